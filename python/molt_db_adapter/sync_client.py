"""MoltClient: a thread-safe blocking client. One connection to the worker
(its stdin/stdout, or a Unix socket); a reader thread hands each response
frame to the thread waiting for that request_id."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
from typing import IO, Any, Iterable, Iterator, Optional, Sequence, Union

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
from .envelope import (
    Response,
    decode_response,
    encode_request,
)
from .errors import InvalidInput, ProtocolError, Timeout, WorkerUnavailable
from .framing import FrameDecoder
from .params import Params
from .results import ExecResult, QueryResult, arrow_table_from_ipc
from .worker_stderr import StderrTap

__all__ = ["MoltClient", "QueryStream"]

_Item = Union[Response, ConnectionLost]


def exit_reason(code: Optional[int]) -> str:
    if code is None:
        return "the worker closed its output"
    if code < 0:
        return f"the worker was killed by signal {-code}"
    return f"the worker exited with status {code}"


class _Connection:
    """One live connection: a spawned worker's pipes or a Unix socket."""

    def __init__(
        self,
        worker_cmd: Optional[Sequence[str]],
        socket_path: Optional[str],
        max_response: int,
        stderr: Union[int, IO[Any], None],
    ) -> None:
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.sock: Optional[socket.socket] = None
        self.stderr_tap = StderrTap(stderr)
        self.stderr_reader: Optional[threading.Thread] = None
        self.answered = False  # some frame arrived: the worker started
        self.start_error: Optional[str] = None
        self.exit_status = 0
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
        self.decoder = FrameDecoder(max_response)
        self.pending: dict[int, "queue.SimpleQueue[_Item]"] = {}
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.dead: Optional[str] = None
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

    def _lost(self, reason: str) -> ConnectionLost:
        return ConnectionLost(reason, self.start_error, self.exit_status)

    def _read(self) -> bytes:
        if self.proc is not None:
            assert self.proc.stdout is not None
            return os.read(self.proc.stdout.fileno(), 1 << 16)
        assert self.sock is not None
        return self.sock.recv(1 << 16)

    def send(self, frame: bytes) -> None:
        if self.dead:
            raise self._lost(self.dead)
        try:
            with self.write_lock:
                if self.proc is not None:
                    assert self.proc.stdin is not None
                    self.proc.stdin.write(frame)
                else:
                    assert self.sock is not None
                    self.sock.sendall(frame)
        except (OSError, ValueError) as e:
            reason = self._death_reason(f"writing to the worker failed: {e}")
            self._fail(reason)
            raise self._lost(reason) from None

    def _death_reason(self, fallback: str) -> str:
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                return fallback
            if self.stderr_reader is not None:
                self.stderr_reader.join(timeout=1.0)  # its last words
            self.exit_status = code
            self.start_error = self.stderr_tap.start_error(code, self.answered)
            return exit_reason(code)
        return fallback

    def _read_loop(self) -> None:
        reason = "the worker closed the connection"
        try:
            while True:
                try:
                    data = self._read()
                except OSError as e:
                    reason = f"reading from the worker failed: {e}"
                    break
                if not data:
                    reason = self._death_reason(reason)
                    break
                for body in self.decoder.feed(data):
                    self._dispatch(decode_response(body))
        except ProtocolError as e:
            reason = f"protocol error: {e.message}"
            self._kill()
        self._fail(reason)

    def _dispatch(self, resp: Response) -> None:
        self.answered = True
        with self.lock:
            q = self.pending.get(resp.request_id)
            if q is not None and not resp.more:
                del self.pending[resp.request_id]
        if q is not None:
            q.put(resp)
        # unknown ids: answers to cancels, or to requests whose caller gave up

    def _fail(self, reason: str) -> None:
        with self.lock:
            if self.dead is None:
                self.dead = reason
            waiting = list(self.pending.values())
            self.pending.clear()
        for q in waiting:
            q.put(self._lost(reason))

    # ---- requests ----
    def register(self, rid: int) -> "queue.SimpleQueue[_Item]":
        q: "queue.SimpleQueue[_Item]" = queue.SimpleQueue()
        with self.lock:
            if self.dead:
                raise self._lost(self.dead)
            self.pending[rid] = q
        return q

    def unregister(self, rid: int) -> None:
        with self.lock:
            self.pending.pop(rid, None)

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self, wait_s: float = 5.0) -> None:
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
        self._fail("the client closed the connection")
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
        self._id_lock = threading.Lock()
        self._conn: Optional[_Connection] = None
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
                self._conn = _Connection(
                    self.worker_cmd, self.socket_path, self.max_response_bytes, self.worker_stderr
                )
                self.connects += 1
            return self._conn

    def _new_id(self) -> int:
        with self._id_lock:
            return next(self._ids)

    # ---- the call machinery ----
    def _send_cancel(self, conn: _Connection, target: int) -> None:
        try:
            conn.send(encode_request(self._new_id(), "cancel", {"request_id": target}))
        except ConnectionLost:
            pass

    def _start(
        self, call: Call, attempt: int
    ) -> tuple[_Connection, int, "queue.SimpleQueue[_Item]", Optional[RequestInfo]]:
        conn = self._connection()
        rid = self._new_id()
        frame = encode_request(rid, call.entry, call.payload, call.timeout_ms)
        info = self._request_info(call, rid, attempt)
        q = conn.register(rid)
        if info is not None:
            info.sent_at = time.monotonic()
        conn.send(frame)
        return conn, rid, q, info

    def _get(self, conn: _Connection, rid: int, q: "queue.SimpleQueue[_Item]", deadline: float, wait: float) -> Response:
        try:
            item = q.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            conn.unregister(rid)
            self._send_cancel(conn, rid)
            raise Timeout(
                f"no answer from the worker within {wait:.3f} s (client-side timeout); "
                "a cancel was sent",
                request_id=rid,
                client_side=True,
            ) from None
        except BaseException:
            # interrupted (KeyboardInterrupt, ...): stop the query on the server
            conn.unregister(rid)
            self._send_cancel(conn, rid)
            raise
        if isinstance(item, ConnectionLost):
            raise item
        return item

    def _call(self, call: Call) -> Any:
        attempt = 0
        wait = call.wait_seconds(self.grace_ms, self.client_timeout_s)
        while True:
            try:
                conn, rid, q, info = self._start(call, attempt)
                resp = self._get(conn, rid, q, time.monotonic() + wait, wait)
            except ConnectionLost as e:
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
        pin_primary: bool = False,
    ) -> QueryResult:
        """Run a read-only query (db_query). ``params``: a list for $1, $2,
        ... or a mapping for :name. ``pin_primary``: on an alias with
        streaming replicas, run on the primary (read-after-write beyond
        the worker's read_your_writes_ms, or a replica-lag-free read)."""
        call = self._query_call(
            sql, params, db_alias=db_alias, result_format=result_format, max_rows=max_rows,
            timeout_ms=timeout_ms, tag=tag, row_shape=row_shape, idempotent=idempotent,
            decode_numeric=decode_numeric, decode_json=decode_json, pin_primary=pin_primary,
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
    ) -> ExecResult:
        """Run a writing statement (db_exec), or ``statements`` — a list of
        (sql, params) — in one transaction. Not resent after a worker death
        unless ``idempotent=True``."""
        call = self._exec_call(
            sql, params, statements=statements, isolation=isolation, db_alias=db_alias,
            result_format=result_format, timeout_ms=timeout_ms, tag=tag, idempotent=idempotent,
            decode_numeric=decode_numeric, decode_json=decode_json,
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
        result: ExecResult = self._call(call)
        return self._rows_affected(result)

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
        pin_primary: bool = False,
    ) -> "QueryStream":
        """A streamed query: iterate rows as they arrive (json/msgpack), or
        ``chunks()`` / ``to_arrow()`` for arrow_ipc. Use it as a context
        manager; leaving early cancels the query. Not resent after a worker
        death."""
        call = self._stream_call(
            sql, params, db_alias=db_alias, result_format=result_format, max_rows=max_rows,
            batch_rows=batch_rows, timeout_ms=timeout_ms, tag=tag,
            decode_numeric=decode_numeric, decode_json=decode_json, pin_primary=pin_primary,
        )
        try:
            conn, rid, q, info = self._start(call, 0)
        except ConnectionLost as e:
            raise lost_error(call, e, 0) from None
        return QueryStream(self, call, conn, rid, q, info)


class QueryStream:
    """The frames of one streamed db_query, read as they arrive."""

    def __init__(
        self, client: MoltClient, call: Call, conn: _Connection, rid: int,
        q: "queue.SimpleQueue[_Item]", info: Optional[RequestInfo],
    ) -> None:
        self._client = client
        self._call = call
        self._conn = conn
        self._q = q
        self._info = info
        self.request_id = rid
        self.codec: str = call.payload["result_format"] if call.payload else "msgpack"
        self.columns: Optional[list[str]] = None
        self.types: Optional[list[str]] = None
        self.metrics: dict[str, Any] = {}
        self.done = False
        self._wait = call.wait_seconds(client.grace_ms, client.client_timeout_s)
        self._deadline = time.monotonic() + self._wait

    def __enter__(self) -> "QueryStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading; a query still running is cancelled."""
        if not self.done:
            self.done = True
            self._conn.unregister(self.request_id)
            self._client._send_cancel(self._conn, self.request_id)

    def _next_frame(self) -> Optional[Response]:
        if self.done:
            return None
        try:
            resp = self._client._get(self._conn, self.request_id, self._q, self._deadline, self._wait)
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

    def chunks(self) -> Iterator[bytes]:
        """Each frame's payload bytes, in order (for arrow_ipc, together one
        IPC stream)."""
        while True:
            resp = self._next_frame()
            if resp is None:
                return
            yield resp.payload

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        """Rows as tuples (json and msgpack)."""
        if self.codec == "arrow_ipc":
            raise InvalidInput("an arrow_ipc stream is read with chunks() or to_arrow()", client_side=True)
        for raw in self.chunks():
            yield from stream_part_rows(self, raw)

    def to_arrow(self) -> Any:
        """All the remaining frames as one pyarrow Table (arrow_ipc)."""
        if self.codec != "arrow_ipc":
            raise InvalidInput("to_arrow() on a stream needs result_format='arrow_ipc'", client_side=True)
        return arrow_table_from_ipc(b"".join(self.chunks()))
