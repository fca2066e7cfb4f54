"""MoltClient: a thread-safe blocking client. One connection to the worker
(its stdin/stdout, or a Unix socket); a reader thread hands each response
frame to the thread waiting for that request_id. The calls themselves are
the steps of protocol.py, which ``MoltClient._run`` performs with blocking
calls."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
from typing import IO, Any, Iterable, Iterator, Optional, Sequence, Union

from .client_base import ClientBase
from .calls import Call, ConnectionLost, finish
from .errors import ProtocolError, WorkerUnavailable
from .listening import Listener
from .params import Params
from .protocol import (
    CONNECT,
    Exchange,
    Explain,
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
)
from .envelope import Response
from .results import ExecResult, QueryResult, arrow_c_stream, arrow_table_from_chunks
from .transaction import Transaction

__all__ = ["MoltClient", "QueryStream"]


class _Connection(Exchange):
    """One live connection: a spawned worker's pipes or a Unix socket; a
    reader thread feeds what arrives to the Exchange, which hands each frame
    to the queue of the thread waiting for it."""

    def __init__(
        self,
        worker_cmd: Optional[Sequence[str]],
        socket_path: Optional[str],
        max_response: int,
        stderr: Union[int, IO[Any], None],
    ) -> None:
        super().__init__(max_response, stderr)
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.sock: Optional[socket.socket] = None
        self.stderr_reader: Optional[threading.Thread] = None
        if worker_cmd is not None:
            try:
                self.proc = subprocess.Popen(
                    list(worker_cmd),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    bufsize=0,
                )
            except OSError as e:
                raise WorkerUnavailable(f"cannot start the worker {worker_cmd[0]!r}: {e}") from None
            self.stderr_reader = threading.Thread(
                target=self._stderr_loop, name="molt-db-stderr", daemon=True
            )
            self.stderr_reader.start()
        else:
            assert socket_path is not None
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(socket_path)
            except OSError as e:
                s.close()
                raise WorkerUnavailable(f"cannot connect to the worker at {socket_path!r}: {e}") from None
            self.sock = s
        self.write_lock = threading.Lock()
        #: the reader waits on it while the streams' flow control stops it
        self.flowing = threading.Condition(self.lock)
        self.reader = threading.Thread(target=self._read_loop, name="molt-db-reader", daemon=True)
        self.reader.start()

    # ---- I/O ----
    def _stderr_loop(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:
                return
            if not data:
                return
            self.stderr_tap.feed(data)

    def new_slot(self) -> Slot:
        return queue.SimpleQueue()

    def _read(self) -> bytes:
        if self.proc is not None:
            assert self.proc.stdout is not None
            return os.read(self.proc.stdout.fileno(), 1 << 16)
        assert self.sock is not None
        return self.sock.recv(1 << 16)

    def send_nowait(self, frame: bytes) -> None:
        """Write a whole frame (blocking: the pipe or socket is the queue)."""
        if self.dead:
            raise self.lost(self.dead, sent=False)
        try:
            with self.write_lock:
                self._write_whole(frame)
        except (OSError, ValueError) as e:
            reason = self._death_reason(f"writing to the worker failed: {e}")
            self.fail(reason)
            raise self.lost(reason) from None

    def _write_whole(self, frame: bytes) -> None:
        try:
            if self.proc is not None:
                assert self.proc.stdin is not None
                self.proc.stdin.write(frame)
            else:
                assert self.sock is not None
                self.sock.sendall(frame)
        except (OSError, ValueError):
            raise
        except BaseException:
            # interrupted (KeyboardInterrupt) in the middle of a write: part
            # of a frame may have left, so nothing can follow it on this
            # connection
            self.fail("a write to the worker was interrupted")
            self._kill()
            raise

    def _death_reason(self, fallback: str) -> str:
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                return fallback
            if self.stderr_reader is not None:
                self.stderr_reader.join(timeout=1.0)  # its last words
            return self.exited(code)
        return fallback

    def _read_loop(self) -> None:
        try:
            while True:
                try:
                    data = self._read()
                except (OSError, ValueError) as e:  # ValueError: close() closed the pipe
                    reason = self.end_reason(e)
                    break
                if not data:
                    reason = self._death_reason(self.end_reason(None))
                    break
                self.received(data)
                if self.flow.stopped:
                    # every waiting request is a stream with parts enough
                    # unread: the pipe fills and the worker pauses its query
                    with self.flowing:
                        while self.flow.stopped:
                            self.flowing.wait()
        except ProtocolError as e:
            reason = f"protocol error: {e.message}"
            self._kill()
        self.fail(reason)

    def flow_changed(self, resume: bool) -> None:
        if resume:
            with self.flowing:
                self.flowing.notify()

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self, wait_s: float = 5.0) -> None:
        self.flow_off()  # the worker's last frames are read, unread streams' too
        if self.proc is not None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # EOF: the worker cancels, drains and exits
            except OSError:
                pass
            try:
                self.proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            if self.stderr_reader is not None:
                self.stderr_reader.join(timeout=wait_s)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        self.fail("the client closed the connection")
        if threading.current_thread() is not self.reader:
            self.reader.join(timeout=wait_s)


class MoltClient(ClientBase):
    """A blocking client for molt_worker, safe to share between threads.

    Give ``worker_cmd`` (a command line; the client starts the worker with
    ``--stdio`` semantics on its pipes) or ``socket_path`` (attach to a
    running ``molt_worker --socket PATH``).

    ``timeout_ms`` is the default deadline sent to the worker; the client
    waits that long plus ``grace_ms`` (or ``client_timeout_s`` if shorter)
    and then sends a cancel and raises Timeout. A worker that dies is
    restarted (or the socket reconnected) on the next call; a call in flight
    is resent up to ``max_restarts`` times when it is idempotent (queries
    are, by default: db_query never writes).
    """

    def _init_transport(self) -> None:
        # a _Connection (the in-process client keeps its own Exchange here)
        self._conn: Optional[Any] = None
        self._conn_lock = threading.Lock()

    # ---- life cycle ----
    def __enter__(self) -> "MoltClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._conn_lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @property
    def worker_pid(self) -> Optional[int]:
        """The pid of the spawned worker process (None when attached to a socket)."""
        c = self._conn
        return c.proc.pid if c is not None and c.proc is not None else None

    def _connection(self) -> _Connection:
        with self._conn_lock:
            if self._closed:
                raise WorkerUnavailable("the client is closed")
            if self._conn is None or self._conn.dead:
                old, self._conn = self._conn, None
                if old is not None:
                    old.close(wait_s=1.0)
                self._conn = self._open_connection()
                self.connects += 1
            conn: _Connection = self._conn
            return conn

    def _open_connection(self) -> Any:
        return _Connection(self.worker_cmd, self.socket_path, self.max_response_bytes, self.worker_stderr)

    # ---- the driver: performs the steps of protocol.py, blocking ----
    def _run(self, steps: Steps[Any]) -> Any:
        try:
            step = next(steps)
            while True:
                try:
                    outcome = self._perform(step)
                except BaseException as e:
                    step = steps.throw(e)
                else:
                    step = steps.send(outcome)
        except StopIteration as done:
            return done.value

    def _perform(self, step: Step) -> Any:
        if isinstance(step, Wait):
            return self._wait(step.req, step.timeout)
        if isinstance(step, Send):
            step.conn.send_nowait(step.frame)
            return None
        if isinstance(step, Explain):
            return step.lost  # the exit status is known before a write fails
        assert step is CONNECT
        return self._connection()

    def _wait(self, req: Request, timeout: float) -> Any:
        """The next item of ``req``'s slot within ``timeout`` s, else None."""
        try:
            return req.slot.get(timeout=timeout)
        except queue.Empty:
            return None

    def _call(self, call: Call, attempt: int = 0) -> Any:
        """``call_steps`` (protocol.py) as plain blocking calls: the same
        steps, hooks, timeout, cancel and resend, without a generator and a
        step object per step (most of the client's own cost per call).
        ``attempt``: how many times the call was sent already."""
        wait = call.wait_seconds(self.grace_ms, self.client_timeout_s)
        while True:
            try:
                req, body = open_request(self, self._connection(), call, attempt)
                try:
                    req.conn.send_envelope(req.rid, body)
                except ConnectionLost:
                    raise
                except BaseException:  # interrupted: the request may run, stop it
                    cancel(self, req)
                    raise
                resp = self._response(req, wait, wait)
            except ConnectionLost as lost:
                attempt = next_attempt(self, call, lost, attempt)
                continue
            self._after_recv(req.info, resp)
            return finish(call, resp)

    def _response(self, req: Request, left: float, wait: float) -> Response:
        """The frame of sent request ``req`` within ``left`` of the call's
        ``wait`` seconds: Timeout (a cancel sent) when none came; an
        interruption cancels the request; ConnectionLost."""
        try:
            item = self._wait(req, left)
        except ConnectionLost:
            raise
        except BaseException:  # interrupted: the request may run, stop it
            cancel(self, req)
            raise
        return answer(self, req, item, wait)

    # ---- public API ----
    def query(
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
        """Run a read-only query (db_query). ``params``: a list for $1, $2,
        ... or a mapping for :name. ``pin_primary``: on an alias with
        streaming replicas, run on the primary (read-after-write beyond
        the worker's read_your_writes_ms, or a replica-lag-free read)."""
        call = self._query_call(
            sql, params, db_alias=db_alias, result_format=result_format, max_rows=max_rows,
            timeout_ms=timeout_ms, tag=tag, row_shape=row_shape, idempotent=idempotent,
            decode_numeric=decode_numeric, decode_json=decode_json, tx_id=tx_id,
            pin_primary=pin_primary,
        )
        result: QueryResult = self._call(call)
        return result

    def execute(
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
        """Run a writing statement (db_exec), or ``statements`` — a list of
        (sql, params) — in one transaction. Not resent after a worker death
        unless ``idempotent=True``."""
        call = self._exec_call(
            sql, params, statements=statements, isolation=isolation, db_alias=db_alias,
            result_format=result_format, timeout_ms=timeout_ms, tag=tag, idempotent=idempotent,
            decode_numeric=decode_numeric, decode_json=decode_json, tx_id=tx_id,
        )
        result: ExecResult = self._call(call)
        return result

    def executemany(
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
        result: ExecResult = self._call(call)
        return self._rows_affected(result)

    def copy_in(
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
        result: ExecResult = self._call(call)
        return result.rows_affected or 0

    def copy_out(
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
        result: QueryResult = self._call(call)
        return result

    def listen(self, *channels: str, db_alias: Optional[str] = None,
               timeout: Optional[float] = None) -> Listener:
        """LISTEN on ``channels`` (exact names: quoted on the server, so
        "Jobs" is not "jobs"; PostgreSQL only) through the worker's one
        listening connection for the alias. Returns once the server
        confirmed the LISTENs: every NOTIFY committed from then on arrives
        as a ``Notification(channel, payload, pid)``. Notes sent while the
        worker reconnects after losing the server are lost
        (``listener.reconnects`` counts those times) and notes the worker
        dropped for a slow reader are counted in ``listener.dropped``."""
        listener = Listener(self, self._listen_call(channels, db_alias=db_alias), timeout)
        self._run(listener.open_steps())
        return listener

    def transaction(
        self,
        *,
        isolation: Optional[str] = None,
        read_only: bool = False,
        deferrable: bool = False,
        db_alias: Optional[str] = None,
        timeout_ms: Optional[int] = None,
    ) -> Transaction:
        """A transaction on one database connection: ``with
        client.transaction() as tx:`` then ``tx.query`` / ``tx.execute`` /
        ``tx.stream``; commits on normal exit, rolls back on an exception;
        ``with tx.transaction():`` is a savepoint. ``isolation``:
        read_committed, repeatable_read or serializable (transaction.py)."""
        return Transaction(self, None, db_alias, isolation, read_only, deferrable, timeout_ms)

    def ping(self, *, timeout_ms: Optional[int] = None) -> dict[str, Any]:
        """``{"version", "pid"}`` from the worker."""
        doc: dict[str, Any] = self._call(self._admin_call("ping", timeout_ms))
        return doc

    def stats(self, *, timeout_ms: Optional[int] = None) -> dict[str, Any]:
        doc: dict[str, Any] = self._call(self._admin_call("stats", timeout_ms))
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
    ) -> "QueryStream":
        """A streamed query: iterate rows as they arrive (json/msgpack), or
        ``chunks()`` / ``to_arrow()`` for arrow_ipc. Use it as a context
        manager; leaving early cancels the query. Not resent after a worker
        death."""
        call = self._stream_call(
            sql, params, db_alias=db_alias, result_format=result_format, max_rows=max_rows,
            batch_rows=batch_rows, timeout_ms=timeout_ms, tag=tag,
            decode_numeric=decode_numeric, decode_json=decode_json, tx_id=tx_id,
            pin_primary=pin_primary,
        )
        req: Request = self._run(open_stream_steps(self, call))
        return QueryStream(self, call, req)


class QueryStream(StreamCore):
    """The frames of one streamed db_query, read as they arrive."""

    def __init__(self, client: MoltClient, call: Call, req: Request) -> None:
        super().__init__(client, call, req)
        self._driver = client

    def __enter__(self) -> "QueryStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chunks(self) -> Iterator[bytes]:
        """Each frame's payload bytes, in order (for arrow_ipc, together one
        IPC stream)."""
        while True:
            resp = self._driver._run(self.next_frame_steps())
            if resp is None:
                return
            yield resp.payload

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        """Rows as tuples (json and msgpack)."""
        self.check_rows()
        for raw in self.chunks():
            yield from self.rows_of(raw)

    def dicts(self) -> Iterator[dict[str, Any]]:
        """Rows as dicts keyed by column name (json and msgpack)."""
        self.check_rows()
        for raw in self.chunks():
            yield from self.dicts_of(raw)

    def to_arrow(self) -> Any:
        """All the remaining frames as one pyarrow Table (arrow_ipc)."""
        self.check_arrow()
        return arrow_table_from_chunks(list(self.chunks()))

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule interface over all the remaining frames
        (arrow_ipc): read in C, the arrays pointing into the frames'
        payloads (``QueryResult.__arrow_c_stream__``)."""
        self.check_arrow()
        chunks = list(self.chunks())
        capsule = arrow_c_stream(chunks)
        if capsule is None:
            return arrow_table_from_chunks(chunks).__arrow_c_stream__(requested_schema)
        return capsule
