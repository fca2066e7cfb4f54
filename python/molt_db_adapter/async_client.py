"""AsyncMoltClient: the asyncio client. One connection (a spawned worker's
pipes or a Unix socket) carries every request of the client; the
transport's data callback resolves each request's future by request_id. A
task cancelled while it waits sends a cancel, so the worker stops the
query. The calls themselves are the steps of protocol.py, which
``AsyncMoltClient._run`` performs with awaits."""

from __future__ import annotations

import asyncio
import collections
from typing import IO, Any, AsyncIterator, Coroutine, Generator, Iterable, NoReturn, Optional, Sequence, Union

from .client_base import ClientBase
from .calls import Call, ConnectionLost, finish
from .errors import ProtocolError, WorkerUnavailable
from .framing import encode_frame
from .listening import AsyncListener
from .params import Params
from .protocol import (
    CONNECT,
    Exchange,
    Explain,
    Item,
    Request,
    Send,
    Slot,
    Step,
    Steps,
    StreamCore,
    Wait,
    answer,
    cancel,
    next_attempt,
    open_request,
    open_stream_steps,
    timed_out,
)
from .results import ExecResult, QueryResult, arrow_table_from_chunks
from .transaction import AsyncTransaction

__all__ = ["AsyncMoltClient", "AsyncQueryStream"]

#: a sender waits for the transport's buffer to drain above this many bytes
#: (asyncio's default high-water mark)
_DRAIN_ABOVE = 1 << 16


def _one_shot(call: Call) -> bool:
    """A query or execute answered by one final frame that is not Arrow
    (an arrow_ipc result keeps the host's frame, uncopied)."""
    p = call.payload
    return (call.kind == "query" or call.kind == "exec") and not call.stream and p is not None \
        and p.get("result_format") != "arrow_ipc"


def _expire(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


class _Pending:
    """The frames that arrived for one request, and the one task waiting for
    them. (A bare future and a timer: asyncio.Queue and wait_for cost a task
    and several callbacks per call.)"""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: collections.deque[Item] = collections.deque()
        self.waiter: Optional[asyncio.Future[None]] = None

    def put(self, item: Item) -> None:
        self.items.append(item)
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def get(self, timeout: float) -> Item:
        """The next frame; asyncio.TimeoutError after ``timeout`` seconds."""
        if not self.items:
            loop = asyncio.get_running_loop()
            w = self.waiter = loop.create_future()
            timer = loop.call_later(timeout, _expire, w)
            try:
                await w
            finally:
                timer.cancel()
                self.waiter = None
        return self.items.popleft()


class _StdoutSink(asyncio.subprocess.SubprocessStreamProtocol):
    """A spawned worker's pipes; stdout goes straight to the connection's
    decoder (no reader task, no StreamReader in between)."""

    def __init__(self, conn: "_AsyncConnection", loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=1 << 16, loop=loop)
        self._conn = conn

    def pipe_data_received(self, fd: int, data: Union[bytes, str]) -> None:
        # asyncio's signature allows str (text-mode pipes); ours are binary
        assert isinstance(data, bytes)
        if fd == 1:
            self._conn.data_received(data)
        elif fd == 2:
            self._conn.stderr_tap.feed(data)
        else:
            super().pipe_data_received(fd, data)

    def pipe_connection_lost(self, fd: int, exc: Optional[Exception]) -> None:
        super().pipe_connection_lost(fd, exc)
        if fd == 1:
            self._conn.eof(exc)


class _SocketSink(asyncio.StreamReaderProtocol):
    """A Unix socket; what arrives goes straight to the connection's decoder
    (the StreamReader stays empty; the protocol gives the StreamWriter its
    flow control)."""

    def __init__(self, conn: "_AsyncConnection", reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(reader, loop=loop)
        self._conn = conn

    def data_received(self, data: bytes) -> None:
        self._conn.data_received(data)

    def eof_received(self) -> bool:
        self._conn.eof(None)
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        super().connection_lost(exc)
        self._conn.eof(exc)


class _AsyncConnection(Exchange):
    """One live connection; the protocol callbacks feed what arrives to the
    Exchange, which hands each frame to the _Pending of its request."""

    completes_in_c = False  # every call goes through the general path

    def __init__(self, loop: asyncio.AbstractEventLoop, max_response: int, stderr: Union[int, IO[Any], None]) -> None:
        super().__init__(max_response, stderr)
        self.loop = loop
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.writer: Optional[asyncio.StreamWriter] = None
        self.ended = False  # the read side is over (dead follows, maybe after the exit status)
        self.task: Optional[asyncio.Task[None]] = None  # finding the exit status
        #: what the streams' flow control pauses and resumes
        self.read_transport: Optional[asyncio.ReadTransport] = None
        # frames queued by this loop iteration's calls, written together
        self.out: list[bytes] = []

    def new_slot(self) -> Slot:
        return _Pending()

    @classmethod
    async def open(
        cls,
        worker_cmd: Optional[Sequence[str]],
        socket_path: Optional[str],
        max_response: int,
        stderr: Union[int, IO[Any], None],
    ) -> "_AsyncConnection":
        loop = asyncio.get_running_loop()
        self = cls(loop, max_response, stderr)
        if worker_cmd is not None:
            try:
                transport, proto = await loop.subprocess_exec(
                    lambda: _StdoutSink(self, loop),
                    *worker_cmd,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            except OSError as e:
                raise WorkerUnavailable(f"cannot start the worker {worker_cmd[0]!r}: {e}") from None
            self.proc = asyncio.subprocess.Process(transport, proto, loop)
            self.read_transport = transport.get_pipe_transport(1)  # type: ignore[assignment]
            assert self.proc.stdin is not None
            self.writer = self.proc.stdin
        else:
            assert socket_path is not None
            reader = asyncio.StreamReader(loop=loop)
            sink = _SocketSink(self, reader, loop)
            try:
                sock_transport, _ = await loop.create_unix_connection(lambda: sink, socket_path)
            except OSError as e:
                raise WorkerUnavailable(f"cannot connect to the worker at {socket_path!r}: {e}") from None
            # what asyncio.open_unix_connection builds, around our protocol
            self.writer = asyncio.StreamWriter(sock_transport, sink, reader, loop)
            self.read_transport = sock_transport
        return self

    async def _death_reason(self, fallback: str) -> str:
        if self.proc is not None:
            try:
                code = await asyncio.wait_for(self.proc.wait(), 1.0)
            except asyncio.TimeoutError:
                return fallback
            return self.exited(code)
        return fallback

    async def why_lost(self, lost: ConnectionLost) -> ConnectionLost:
        """lost, told whether the worker never started: a failed write can
        come before the worker's exit status is known."""
        if self.proc is None or lost.start_error is not None or self.answered:
            return lost
        reason = await self._death_reason(lost.reason)
        return self.lost(reason, lost.sent)

    # ---- the read side: protocol callbacks ----
    def data_received(self, data: bytes) -> None:
        """Whatever has arrived: with many requests in flight, one wake-up
        hands out many responses."""
        if self.ended:
            return
        try:
            self.received(data)
        except ProtocolError as e:
            self.ended = True
            self._kill()
            self.fail(f"protocol error: {e.message}")

    def flow_changed(self, resume: bool) -> None:
        """Every waiting request is a stream with parts enough unread (or
        no longer): the socket or pipe fills, and the worker pauses."""
        t = self.read_transport
        if t is None or t.is_closing():
            return
        if resume:
            t.resume_reading()
        else:
            t.pause_reading()

    def eof(self, exc: Optional[Exception]) -> None:
        if self.ended:
            return
        self.ended = True
        reason = self.end_reason(exc)
        if self.proc is None:
            self.fail(reason)
            return

        async def fail_with_exit_status() -> None:
            self.fail(await self._death_reason(reason))

        self.task = self.loop.create_task(fail_with_exit_status())

    def _kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
        if self.writer is not None and self.proc is None:
            self.writer.close()

    def send_nowait(self, frame: bytes) -> None:
        """Queue a frame; the frames of one loop iteration leave in one write
        (one system call and one wake-up of the worker, not one each)."""
        if self.dead:
            raise self.lost(self.dead, sent=False)
        if len(self.pending) <= 1 and not self.out:
            self._write(frame)  # nothing else in flight: nothing to wait for
            return
        if not self.out:
            self.loop.call_soon(self._flush)
        self.out.append(frame)

    def _flush(self) -> None:
        data, self.out = b"".join(self.out), []
        if data and not self.dead:
            self._write(data)

    def _write(self, data: bytes) -> None:
        assert self.writer is not None
        try:
            self.writer.write(data)
        except (OSError, RuntimeError) as e:
            self.fail(f"writing to the worker failed: {e}")

    async def send(self, frame: bytes) -> None:
        self.send_nowait(frame)
        assert self.writer is not None
        if self.writer.transport.get_write_buffer_size() <= _DRAIN_ABOVE:
            return  # drain() would return at once; skipping it skips two coroutines
        try:
            await self.writer.drain()
        except (OSError, ConnectionError) as e:
            reason = await self._death_reason(f"writing to the worker failed: {e}")
            self.fail(reason)
            raise self.lost(reason) from None

    async def close(self, wait_s: float = 5.0) -> None:
        self.flow_off()  # the worker's last frames are read, unread streams' too
        if self.writer is not None:
            try:
                self.writer.close()  # EOF on the worker's stdin / socket
            except (OSError, RuntimeError):
                pass
        if self.proc is not None:
            try:
                await asyncio.wait_for(self.proc.wait(), wait_s)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.ended = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        self.fail("the client closed the connection")


class AsyncMoltClient(ClientBase):
    """The asyncio client; the same arguments and calls as MoltClient, awaited.

    Use it from one event loop. Thousands of concurrent calls share its one
    connection. Cancelling the task that awaits a call sends a cancel to the
    worker, which stops the query.
    """

    def _init_transport(self) -> None:
        # an _AsyncConnection (the in-process client keeps its own Exchange
        # here, with the same send / why_lost / close)
        self._conn: Optional[Any] = None
        self._conn_lock: Optional[asyncio.Lock] = None

    async def __aenter__(self) -> "AsyncMoltClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    @property
    def worker_pid(self) -> Optional[int]:
        c = self._conn
        return c.proc.pid if c is not None and c.proc is not None else None

    async def _connection(self) -> _AsyncConnection:
        if self._closed:
            raise WorkerUnavailable("the client is closed")
        c: Optional[_AsyncConnection] = self._conn
        if c is not None and not c.dead:
            return c
        if self._conn_lock is None:
            self._conn_lock = asyncio.Lock()
        async with self._conn_lock:
            if self._conn is None or self._conn.dead:
                old, self._conn = self._conn, None
                if old is not None:
                    await old.close(wait_s=1.0)
                self._conn = await self._open_connection()
                self.connects += 1
            conn: _AsyncConnection = self._conn
            return conn

    async def _open_connection(self) -> Any:
        return await _AsyncConnection.open(
            self.worker_cmd, self.socket_path, self.max_response_bytes, self.worker_stderr
        )

    async def _call(self, call: Call, attempt: int = 0) -> Any:
        """``call_steps`` (protocol.py) as plain awaits: the same steps,
        hooks, timeout, cancel and resend, without a generator and a step
        object per step (most of the client's own cost per call).
        ``attempt``: the attempts already lost.

        On an exchange that completes one-shot calls itself (the in-process
        one: ``completes_in_c``), a first attempt of a query or execute
        without hooks takes the short way: submitted, its waiter completed
        with the final frame by the host's turn in C; a lost host continues
        below as the next attempt."""
        wait = call.wait_seconds(self.grace_ms, self.client_timeout_s)
        conn: Any = self._conn
        if (attempt == 0 and conn is not None and conn.completes_in_c and not conn.dead and not self._closed
                and self.before_send is None and self.after_recv is None and _one_shot(call)):
            rid = self._new_id()
            try:
                waiter = conn.submit_fast(rid, call, wait)
                if waiter is not None:  # else a value msgpack packs: the general path
                    try:
                        frame = await waiter
                    except BaseException as why:  # task cancelled, or past its deadline
                        self._gave_up(conn, waiter, why, wait)
                    return conn.result_of(call, frame, rid)
            except ConnectionLost as lost:
                attempt = next_attempt(self, call, await conn.why_lost(lost), 0)
        while True:
            try:
                conn = self._conn  # an _AsyncConnection or the in-process one
                if conn is None or conn.dead or self._closed:
                    conn = await self._connection()
                req, body = open_request(self, conn, call, attempt)
                try:
                    if conn.send_waits:
                        await conn.send(encode_frame(body))
                    else:
                        conn.send_envelope(req.rid, body)
                    try:
                        item = await req.slot.get(wait)
                    except asyncio.TimeoutError:
                        item = None
                except ConnectionLost:
                    raise
                except BaseException:  # interrupted (task cancelled): stop the query
                    cancel(self, req)
                    raise
                resp = answer(self, req, item, wait)
            except ConnectionLost as lost:
                conn = self._conn
                e = lost if conn is None else await conn.why_lost(lost)
                attempt = next_attempt(self, call, e, attempt)
                continue
            self._after_recv(req.info, resp)
            return finish(call, resp)

    def _gave_up(self, conn: Any, waiter: Any, why: BaseException, wait: float) -> NoReturn:
        """A short-way call stopped waiting for its Waiter: past its deadline
        (``Timeout``) or interrupted (``why`` raised again); either way the
        request is cancelled, on the server too, and its stream's remaining
        frames go through the general code."""
        conn.unfast(waiter)
        req = Request(conn, waiter.request_id, _Pending(), None)
        if isinstance(why, asyncio.TimeoutError):
            raise timed_out(self, req, wait) from None
        cancel(self, req)  # stop the query on the server
        raise why

    # ---- the driver: performs the steps of protocol.py, awaiting ----
    async def _run(self, steps: Steps[Any]) -> Any:
        # the steps are performed inline: a coroutine per step would cost
        # more than the step itself on the hot path
        try:
            step = next(steps)
            while True:
                try:
                    if isinstance(step, Wait):
                        try:
                            outcome: Any = await step.req.slot.get(step.timeout)
                        except asyncio.TimeoutError:
                            outcome = None
                    elif isinstance(step, Send):
                        dest: Any = step.conn  # an _AsyncConnection or the in-process one
                        await dest.send(step.frame)
                        outcome = None
                    elif isinstance(step, Explain):
                        conn = self._conn
                        outcome = step.lost if conn is None else await conn.why_lost(step.lost)
                    else:
                        assert step is CONNECT
                        conn = self._conn
                        if conn is None or conn.dead or self._closed:
                            conn = await self._connection()
                        outcome = conn
                except BaseException as e:
                    step = steps.throw(e)
                else:
                    step = steps.send(outcome)
        except StopIteration as done:
            return done.value

    async def query(
        self,
        sql: str,
        params: Params = None,
        *,
        db_alias: Optional[str] = None,
        result_format: str = "msgpack",
        max_rows: Optional[int] = None,
        timeout_ms: Optional[int] = None,
        tag: Optional[str] = None,
        decode_numeric: Optional[str] = None,
        decode_json: Optional[bool] = None,
        row_shape: Optional[str] = None,
        idempotent: bool = True,
        tx_id: Optional[int] = None,
        pin_primary: bool = False,
    ) -> QueryResult:
        call = self._query_call(
            sql, params, db_alias=db_alias, result_format=result_format, max_rows=max_rows,
            timeout_ms=timeout_ms, tag=tag, row_shape=row_shape, idempotent=idempotent,
            decode_numeric=decode_numeric, decode_json=decode_json, tx_id=tx_id,
            pin_primary=pin_primary,
        )
        result: QueryResult = await self._call(call)
        return result

    async def execute(
        self,
        sql: Optional[str] = None,
        params: Params = None,
        *,
        statements: Optional[Sequence[tuple[str, Params]]] = None,
        isolation: Optional[str] = None,
        db_alias: Optional[str] = None,
        result_format: str = "msgpack",
        timeout_ms: Optional[int] = None,
        tag: Optional[str] = None,
        decode_numeric: Optional[str] = None,
        decode_json: Optional[bool] = None,
        idempotent: bool = False,
        tx_id: Optional[int] = None,
    ) -> ExecResult:
        call = self._exec_call(
            sql, params, statements=statements, isolation=isolation, db_alias=db_alias,
            result_format=result_format, timeout_ms=timeout_ms, tag=tag, idempotent=idempotent,
            decode_numeric=decode_numeric, decode_json=decode_json, tx_id=tx_id,
        )
        result: ExecResult = await self._call(call)
        return result

    async def executemany(
        self,
        sql: str,
        seq_of_params: Iterable[Params],
        *,
        isolation: Optional[str] = None,
        db_alias: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        tag: Optional[str] = None,
        idempotent: bool = False,
        tx_id: Optional[int] = None,
    ) -> int:
        """Run ``sql`` once for each parameter set in ``seq_of_params``, all in
        one transaction (db_exec ``statements``): all rows or none. Returns
        the total rows affected (0, without a request, for no sets). At most
        10 000 sets per call. Not resent after a worker death unless
        ``idempotent=True``."""
        call = self._executemany_call(
            sql, seq_of_params, isolation=isolation, db_alias=db_alias, timeout_ms=timeout_ms,
            tag=tag, idempotent=idempotent, tx_id=tx_id,
        )
        if call is None:
            return 0
        result: ExecResult = await self._call(call)
        return self._rows_affected(result)

    async def copy_in(
        self,
        table: Union[str, Sequence[str]],
        rows: Any,
        *,
        columns: Optional[Sequence[str]] = None,
        db_alias: Optional[str] = None,
        timeout_ms: Optional[int] = None,
    ) -> int:
        """Write ``rows`` (sequences of values, or a ``pyarrow.Table``) into
        ``table`` (a name, or a (schema, table) pair) through COPY FROM STDIN,
        in one transaction: all rows or none. ``columns``: the table columns
        the values go to (default: all, in table order; for an Arrow table
        its column names). Returns the rows copied (0, without a request,
        for no rows). Needs a worker alias with db.write. One call is one
        request, bounded by the worker's max_request_bytes (16 MiB by
        default). Not resent after a worker death."""
        call = self._copy_in_call(table, rows, columns=columns, db_alias=db_alias,
                                  timeout_ms=timeout_ms)
        if call is None:
            return 0
        result: ExecResult = await self._call(call)
        return result.rows_affected or 0

    async def copy_out(
        self,
        sql: str,
        *,
        db_alias: Optional[str] = None,
        result_format: str = "msgpack",
        max_rows: Optional[int] = None,
        timeout_ms: Optional[int] = None,
        tag: Optional[str] = None,
    ) -> QueryResult:
        """Run a read-only query through COPY ... TO STDOUT on the server
        (the copy_out entry) and return its rows as ``query`` does
        (``result_format="arrow_ipc"``: ``.to_arrow()``). No parameters."""
        call = self._copy_out_call(sql, db_alias=db_alias, result_format=result_format,
                                   max_rows=max_rows, timeout_ms=timeout_ms, tag=tag)
        result: QueryResult = await self._call(call)
        return result

    def listen(self, *channels: str, db_alias: Optional[str] = None,
               timeout: Optional[float] = None) -> AsyncListener:
        """LISTEN on ``channels`` (exact names: quoted on the server, so
        "Jobs" is not "jobs"; PostgreSQL only) through the worker's one
        listening connection for the alias. It LISTENs when first read
        (``async for``) or entered (``async with``); once the server
        confirmed: every NOTIFY committed from then on arrives
        as a ``Notification(channel, payload, pid)``. Notes sent while the
        worker reconnects after losing the server are lost
        (``listener.reconnects`` counts those times) and notes the worker
        dropped for a slow reader are counted in ``listener.dropped``."""
        return AsyncListener(self, self._listen_call(channels, db_alias=db_alias), timeout)

    def transaction(
        self,
        *,
        isolation: Optional[str] = None,
        read_only: bool = False,
        deferrable: bool = False,
        db_alias: Optional[str] = None,
        timeout_ms: Optional[int] = None,
    ) -> AsyncTransaction:
        """A transaction on one database connection: ``async with
        aclient.transaction() as tx:`` then ``await tx.query`` / ``await
        tx.execute`` / ``tx.stream``; commits on normal exit, rolls back on
        an exception; ``async with tx.transaction():`` is a savepoint. ``isolation``:
        read_committed, repeatable_read or serializable (transaction.py)."""
        return AsyncTransaction(self, None, db_alias, isolation, read_only, deferrable, timeout_ms)

    async def ping(self, *, timeout_ms: Optional[int] = None) -> dict[str, Any]:
        doc: dict[str, Any] = await self._call(self._admin_call("ping", timeout_ms))
        return doc

    async def stats(self, *, timeout_ms: Optional[int] = None) -> dict[str, Any]:
        doc: dict[str, Any] = await self._call(self._admin_call("stats", timeout_ms))
        return doc

    def stream(
        self,
        sql: str,
        params: Params = None,
        *,
        db_alias: Optional[str] = None,
        result_format: str = "msgpack",
        max_rows: Optional[int] = None,
        batch_rows: Optional[int] = None,
        timeout_ms: Optional[int] = None,
        tag: Optional[str] = None,
        decode_numeric: Optional[str] = None,
        decode_json: Optional[bool] = None,
        tx_id: Optional[int] = None,
        pin_primary: bool = False,
    ) -> "_StreamOpening":
        """A streamed query; ``async with client.stream(...) as s:
        async for row in s: ...`` (``s = await client.stream(...)`` works
        too; then close it). Leaving early cancels the query."""
        call = self._stream_call(
            sql, params, db_alias=db_alias, result_format=result_format, max_rows=max_rows,
            batch_rows=batch_rows, timeout_ms=timeout_ms, tag=tag,
            decode_numeric=decode_numeric, decode_json=decode_json, tx_id=tx_id,
            pin_primary=pin_primary,
        )
        return _StreamOpening(self._open_stream(call))

    async def _open_stream(self, call: Call) -> "AsyncQueryStream":
        req: Request = await self._run(open_stream_steps(self, call))
        return AsyncQueryStream(self, call, req)


class _StreamOpening:
    """What ``AsyncMoltClient.stream`` returns: awaited, the stream; used in
    ``async with``, the stream, closed on leaving."""

    def __init__(self, opening: Coroutine[Any, Any, "AsyncQueryStream"]) -> None:
        self._opening = opening
        self._stream: Optional[AsyncQueryStream] = None

    def __await__(self) -> Generator[Any, None, "AsyncQueryStream"]:
        return self._opening.__await__()

    async def __aenter__(self) -> "AsyncQueryStream":
        self._stream = await self._opening
        return self._stream

    async def __aexit__(self, *exc: object) -> None:
        if self._stream is not None:
            self._stream.close()


class AsyncQueryStream(StreamCore):
    """The frames of one streamed db_query, read as they arrive."""

    def __init__(self, client: AsyncMoltClient, call: Call, req: Request) -> None:
        super().__init__(client, call, req)
        self._driver = client

    async def __aenter__(self) -> "AsyncQueryStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            resp = await self._driver._run(self.next_frame_steps())
            if resp is None:
                return
            yield resp.payload

    async def rows(self) -> AsyncIterator[tuple[Any, ...]]:
        self.check_rows()
        async for raw in self.chunks():
            for row in self.rows_of(raw):
                yield row

    async def dicts(self) -> AsyncIterator[dict[str, Any]]:
        """Rows as dicts keyed by column name (json and msgpack)."""
        self.check_rows()
        async for raw in self.chunks():
            for row in self.dicts_of(raw):
                yield row

    def __aiter__(self) -> AsyncIterator[tuple[Any, ...]]:
        return self.rows()

    async def to_arrow(self) -> Any:
        self.check_arrow()
        return arrow_table_from_chunks([c async for c in self.chunks()])
