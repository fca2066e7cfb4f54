"""AsyncMoltClient: the asyncio client. One connection (a spawned worker's
pipes or a Unix socket) carries every request of the client; a reader task
resolves each request's future by request_id. A task cancelled while it
waits sends a cancel, so the worker stops the query."""

from __future__ import annotations

import asyncio
import collections
import time
from typing import IO, Any, AsyncIterator, Coroutine, Generator, Iterable, Optional, Sequence, Union

from .client_base import ClientBase
from .calls import (
    Call,
    ConnectionLost,
    RequestInfo,
    ResponseInfo,
    finish,
    lost_error,
    raise_for,
    stream_part_rows,
)
from .envelope import Response, decode_response, encode_request
from .errors import InvalidInput, ProtocolError, Timeout, WorkerUnavailable
from .framing import FrameDecoder
from .params import Params
from .results import ExecResult, QueryResult, arrow_table_from_ipc
from .sync_client import exit_reason
from .worker_stderr import StderrTap

__all__ = ["AsyncMoltClient", "AsyncQueryStream"]

_Item = Union[Response, ConnectionLost]
#: a sender waits for the transport's buffer to drain above this many bytes
#: (asyncio's default high-water mark)
_DRAIN_ABOVE = 1 << 16


def _expire(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


class _Pending:
    """The frames that arrived for one request, and the one task waiting for
    them. (A bare future and a timer: asyncio.Queue and wait_for cost a task
    and several callbacks per call.)"""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: collections.deque[_Item] = collections.deque()
        self.waiter: Optional[asyncio.Future[None]] = None

    def put(self, item: _Item) -> None:
        self.items.append(item)
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def get(self, timeout: float) -> _Item:
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

    def pipe_data_received(self, fd: int, data: bytes) -> None:
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
    """A Unix socket; what arrives goes straight to the connection's decoder."""

    def __init__(self, conn: "_AsyncConnection", loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(asyncio.StreamReader(loop=loop), loop=loop)
        self._conn = conn

    def data_received(self, data: bytes) -> None:
        self._conn.data_received(data)

    def eof_received(self) -> bool:
        self._conn.eof(None)
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        super().connection_lost(exc)
        self._conn.eof(exc)


class _AsyncConnection:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_response: int, stderr: Union[int, IO[Any], None]) -> None:
        self.loop = loop
        self.stderr_tap = StderrTap(stderr)
        self.answered = False  # some frame arrived: the worker started
        self.start_error: Optional[str] = None
        self.exit_status = 0
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.writer: Optional[asyncio.StreamWriter] = None
        self.pending: dict[int, _Pending] = {}
        self.dead: Optional[str] = None
        self.decoder = FrameDecoder(max_response)
        self.ended = False  # the read side is over (dead follows, maybe after the exit status)
        self.task: Optional[asyncio.Task[None]] = None  # finding the exit status
        # frames queued by this loop iteration's calls, written together
        self.out: list[bytes] = []

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
            assert self.proc.stdin is not None
            self.writer = self.proc.stdin
        else:
            assert socket_path is not None
            sink = _SocketSink(self, loop)
            try:
                transport, _ = await loop.create_unix_connection(lambda: sink, socket_path)
            except OSError as e:
                raise WorkerUnavailable(f"cannot connect to the worker at {socket_path!r}: {e}") from None
            self.writer = asyncio.StreamWriter(transport, sink, sink._stream_reader, loop)  # type: ignore[arg-type]
        return self

    async def _death_reason(self, fallback: str) -> str:
        if self.proc is not None:
            try:
                code = await asyncio.wait_for(self.proc.wait(), 1.0)
            except asyncio.TimeoutError:
                return fallback
            self.exit_status = code
            self.start_error = self.stderr_tap.start_error(code, self.answered)
            return exit_reason(code)
        return fallback

    def _lost(self, reason: str) -> ConnectionLost:
        return ConnectionLost(reason, self.start_error, self.exit_status)

    async def why_lost(self, lost: ConnectionLost) -> ConnectionLost:
        """lost, told whether the worker never started: a failed write can
        come before the worker's exit status is known."""
        if self.proc is None or lost.start_error is not None or self.answered:
            return lost
        reason = await self._death_reason(lost.reason)
        return self._lost(reason)

    # ---- the read side: protocol callbacks ----
    def data_received(self, data: bytes) -> None:
        """Whatever has arrived: with many requests in flight, one wake-up
        hands out many responses."""
        if self.ended:
            return
        try:
            for body in self.decoder.feed(data):
                self.answered = True
                resp = decode_response(body)
                p = self.pending.get(resp.request_id)
                if p is not None:
                    if not resp.more:
                        del self.pending[resp.request_id]
                    p.put(resp)
        except ProtocolError as e:
            self.ended = True
            self._kill()
            self._fail(f"protocol error: {e.message}")

    def eof(self, exc: Optional[Exception]) -> None:
        if self.ended:
            return
        self.ended = True
        if exc is not None:
            reason = f"reading from the worker failed: {exc}"
        else:
            reason = "the worker closed the connection"
            if self.decoder.pending_bytes:
                reason += " in the middle of a frame"
        if self.proc is None:
            self._fail(reason)
            return

        async def fail_with_exit_status() -> None:
            self._fail(await self._death_reason(reason))

        self.task = self.loop.create_task(fail_with_exit_status())

    def _fail(self, reason: str) -> None:
        if self.dead is None:
            self.dead = reason
        waiting = list(self.pending.values())
        self.pending.clear()
        for p in waiting:
            p.put(self._lost(reason))

    def _kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
        if self.writer is not None and self.proc is None:
            self.writer.close()

    def register(self, rid: int) -> _Pending:
        if self.dead:
            raise self._lost(self.dead)
        p = _Pending()
        self.pending[rid] = p
        return p

    def unregister(self, rid: int) -> None:
        self.pending.pop(rid, None)

    def send_nowait(self, frame: bytes) -> None:
        """Queue a frame; the frames of one loop iteration leave in one write
        (one system call and one wake-up of the worker, not one each)."""
        if self.dead:
            raise self._lost(self.dead)
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
            self._fail(f"writing to the worker failed: {e}")

    async def send(self, frame: bytes) -> None:
        self.send_nowait(frame)
        assert self.writer is not None
        if self.writer.transport.get_write_buffer_size() <= _DRAIN_ABOVE:
            return  # drain() would return at once; skipping it skips two coroutines
        try:
            await self.writer.drain()
        except (OSError, ConnectionError) as e:
            reason = await self._death_reason(f"writing to the worker failed: {e}")
            self._fail(reason)
            raise self._lost(reason) from None

    async def close(self, wait_s: float = 5.0) -> None:
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
        self._fail("the client closed the connection")


class AsyncMoltClient(ClientBase):
    """The asyncio client; the same arguments and calls as MoltClient, awaited.

    Use it from one event loop. Thousands of concurrent calls share its one
    connection. Cancelling the task that awaits a call sends a cancel to the
    worker, which stops the query.
    """

    def _init_transport(self) -> None:
        self._conn: Optional[_AsyncConnection] = None
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
        c = self._conn
        if c is not None and not c.dead:
            return c
        if self._conn_lock is None:
            self._conn_lock = asyncio.Lock()
        async with self._conn_lock:
            if self._conn is None or self._conn.dead:
                old, self._conn = self._conn, None
                if old is not None:
                    await old.close(wait_s=1.0)
                self._conn = await _AsyncConnection.open(
                    self.worker_cmd, self.socket_path, self.max_response_bytes, self.worker_stderr
                )
                self.connects += 1
            return self._conn

    def _send_cancel(self, conn: _AsyncConnection, target: int) -> None:
        try:
            conn.send_nowait(encode_request(next(self._ids), "cancel", {"request_id": target}))
        except ConnectionLost:
            pass

    async def _start(
        self, call: Call, attempt: int
    ) -> tuple[_AsyncConnection, int, _Pending, Optional[RequestInfo]]:
        conn = self._conn
        if conn is None or conn.dead or self._closed:
            conn = await self._connection()
        rid = next(self._ids)
        frame = encode_request(rid, call.entry, call.payload, call.timeout_ms)
        info = self._request_info(call, rid, attempt)
        p = conn.register(rid)
        if info is not None:
            info.sent_at = time.monotonic()
        try:
            await conn.send(frame)
        except asyncio.CancelledError:
            conn.unregister(rid)
            self._send_cancel(conn, rid)
            raise
        return conn, rid, p, info

    async def _get(self, conn: _AsyncConnection, rid: int, p: _Pending, deadline: float, wait: float) -> Response:
        try:
            item = await p.get(max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            conn.unregister(rid)
            self._send_cancel(conn, rid)
            raise Timeout(
                f"no answer from the worker within {wait:.3f} s (client-side timeout); a cancel was sent",
                request_id=rid,
                client_side=True,
            ) from None
        except asyncio.CancelledError:
            conn.unregister(rid)
            self._send_cancel(conn, rid)
            raise
        if isinstance(item, ConnectionLost):
            raise item
        return item

    async def _call(self, call: Call) -> Any:
        attempt = 0
        wait = call.wait_seconds(self.grace_ms, self.client_timeout_s)
        while True:
            try:
                conn, rid, p, info = await self._start(call, attempt)
                resp = await self._get(conn, rid, p, time.monotonic() + wait, wait)
            except ConnectionLost as lost:
                e = lost if self._conn is None else await self._conn.why_lost(lost)
                if call.idempotent and attempt < self.max_restarts and e.resendable():
                    attempt += 1
                    continue
                raise lost_error(call, e, attempt) from None
            if self.after_recv is not None and info is not None:
                self.after_recv(
                    info,
                    ResponseInfo(resp.status, resp.metrics, time.monotonic() - info.sent_at, len(resp.payload)),
                )
            return finish(call, resp)

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
        pin_primary: bool = False,
    ) -> QueryResult:
        call = self._query_call(
            sql, params, db_alias=db_alias, result_format=result_format, max_rows=max_rows,
            timeout_ms=timeout_ms, tag=tag, row_shape=row_shape, idempotent=idempotent,
            decode_numeric=decode_numeric, decode_json=decode_json, pin_primary=pin_primary,
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
    ) -> ExecResult:
        call = self._exec_call(
            sql, params, statements=statements, isolation=isolation, db_alias=db_alias,
            result_format=result_format, timeout_ms=timeout_ms, tag=tag, idempotent=idempotent,
            decode_numeric=decode_numeric, decode_json=decode_json,
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
    ) -> int:
        """Run ``sql`` once for each parameter set in ``seq_of_params``, all in
        one transaction (db_exec ``statements``): all rows or none. Returns
        the total rows affected (0, without a request, for no sets). At most
        10 000 sets per call. Not resent after a worker death unless
        ``idempotent=True``."""
        call = self._executemany_call(
            sql, seq_of_params, isolation=isolation, db_alias=db_alias, timeout_ms=timeout_ms,
            tag=tag, idempotent=idempotent,
        )
        if call is None:
            return 0
        result: ExecResult = await self._call(call)
        return self._rows_affected(result)

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
        pin_primary: bool = False,
    ) -> "_StreamOpening":
        """A streamed query; ``async with client.stream(...) as s:
        async for row in s: ...`` (``s = await client.stream(...)`` works
        too; then close it). Leaving early cancels the query."""
        call = self._stream_call(
            sql, params, db_alias=db_alias, result_format=result_format, max_rows=max_rows,
            batch_rows=batch_rows, timeout_ms=timeout_ms, tag=tag,
            decode_numeric=decode_numeric, decode_json=decode_json, pin_primary=pin_primary,
        )
        return _StreamOpening(self._open_stream(call))

    async def _open_stream(self, call: Call) -> "AsyncQueryStream":
        try:
            conn, rid, p, info = await self._start(call, 0)
        except ConnectionLost as lost:
            e = lost if self._conn is None else await self._conn.why_lost(lost)
            raise lost_error(call, e, 0) from None
        return AsyncQueryStream(self, call, conn, rid, p, info)


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


class AsyncQueryStream:
    def __init__(
        self, client: AsyncMoltClient, call: Call, conn: _AsyncConnection, rid: int,
        p: _Pending, info: Optional[RequestInfo],
    ) -> None:
        self._client = client
        self._call = call
        self._conn = conn
        self._p = p
        self._info = info
        self.request_id = rid
        self.codec: str = call.payload["result_format"] if call.payload else "msgpack"
        self.columns: Optional[list[str]] = None
        self.types: Optional[list[str]] = None
        self.metrics: dict[str, Any] = {}
        self.done = False
        self._wait = call.wait_seconds(client.grace_ms, client.client_timeout_s)
        self._deadline = time.monotonic() + self._wait

    async def __aenter__(self) -> "AsyncQueryStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self.done:
            self.done = True
            self._conn.unregister(self.request_id)
            self._client._send_cancel(self._conn, self.request_id)

    async def _next_frame(self) -> Optional[Response]:
        if self.done:
            return None
        try:
            resp = await self._client._get(self._conn, self.request_id, self._p, self._deadline, self._wait)
        except ConnectionLost as e:
            self.done = True
            raise lost_error(self._call, e, 0) from None
        except BaseException:
            self.done = True
            raise
        if not resp.more:
            self.done = True
            self.metrics = resp.metrics
            if self._client.after_recv is not None and self._info is not None:
                self._client.after_recv(
                    self._info,
                    ResponseInfo(resp.status, resp.metrics, time.monotonic() - self._info.sent_at, len(resp.payload)),
                )
            raise_for(resp)
            return resp if resp.payload else None
        return resp

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            resp = await self._next_frame()
            if resp is None:
                return
            yield resp.payload

    async def rows(self) -> AsyncIterator[tuple[Any, ...]]:
        if self.codec == "arrow_ipc":
            raise InvalidInput("an arrow_ipc stream is read with chunks() or to_arrow()", client_side=True)
        async for raw in self.chunks():
            for row in stream_part_rows(self, raw):
                yield row

    def __aiter__(self) -> AsyncIterator[tuple[Any, ...]]:
        return self.rows()

    async def to_arrow(self) -> Any:
        if self.codec != "arrow_ipc":
            raise InvalidInput("to_arrow() on a stream needs result_format='arrow_ipc'", client_side=True)
        return arrow_table_from_ipc(b"".join([c async for c in self.chunks()]))
