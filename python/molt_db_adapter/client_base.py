"""What MoltClient and AsyncMoltClient share: their settings (checked once,
here) and how each public call becomes a Call. A Call travels through the
steps in protocol.py; the two clients differ only in the driver that
performs those steps (blocking calls and a reader thread, or asyncio)."""

from __future__ import annotations

import collections.abc
import itertools
import threading
import time
from typing import IO, Any, Optional, Sequence, Union

from .calls import DEFAULT_GRACE_MS, AfterRecv, BeforeSend, Call, RequestInfo, ResponseInfo
from .copying import as_copy_out, copy_in_call
from .listening import listen_call
from .decoding import Decoding
from .envelope import Response, check_timeout_ms, exec_payload, query_payload
from .errors import InvalidInput
from .framing import DEFAULT_MAX_RESPONSE
from .params import Params, encode_params
from .protocol import Steps, call_steps
from .results import ExecResult
from .worker_path import resolve_worker_cmd

#: the most statements the worker runs in one db_exec (contract section 6)
MAX_STATEMENTS = 10000


class ClientBase:
    """Settings and call construction; not used on its own."""

    def __init__(
        self,
        worker_cmd: Optional[Sequence[str]] = None,
        *,
        socket_path: Optional[str] = None,
        db_alias: str = "default",
        timeout_ms: Optional[int] = None,
        client_timeout_s: Optional[float] = None,
        grace_ms: int = DEFAULT_GRACE_MS,
        max_restarts: int = 1,
        before_send: Optional[BeforeSend] = None,
        after_recv: Optional[AfterRecv] = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE,
        worker_stderr: Union[int, IO[Any], None] = None,
        decode_numeric: str = "str",
        decode_json: bool = False,
    ) -> None:
        if max_restarts < 0:
            raise InvalidInput("max_restarts must be >= 0", client_side=True)
        self._set_target(worker_cmd, socket_path)
        self.db_alias = db_alias
        self.timeout_ms = check_timeout_ms(timeout_ms)
        self.client_timeout_s = client_timeout_s
        self.grace_ms = grace_ms
        self.max_restarts = max_restarts
        self.before_send = before_send
        self.after_recv = after_recv
        self.max_response_bytes = max_response_bytes
        self.worker_stderr = worker_stderr
        #: how results decode numeric and json/jsonb (decoding.py); a call's
        #: decode_numeric / decode_json override it
        self.decoding = Decoding.checked(decode_numeric, decode_json)
        self._ids = itertools.count(1)
        self._id_lock = threading.Lock()
        self._closed = False
        #: how many times a worker was (re)started or the socket (re)connected
        self.connects = 0
        self._init_transport()

    def _set_target(self, worker_cmd: Optional[Sequence[str]], socket_path: Optional[str]) -> None:
        """What the client talks to: a worker it starts, or a worker's socket
        (the in-process clients take the worker's arguments instead)."""
        if (worker_cmd is None) == (socket_path is None):
            raise InvalidInput("give exactly one of worker_cmd and socket_path", client_side=True)
        if worker_cmd is not None and (isinstance(worker_cmd, str) or not worker_cmd):
            raise InvalidInput("worker_cmd must be a non-empty list of arguments", client_side=True)
        self.worker_cmd = resolve_worker_cmd(worker_cmd) if worker_cmd is not None else None
        self.socket_path = socket_path

    def _init_transport(self) -> None:
        """The client's own connection state (a subclass sets it up)."""
        raise NotImplementedError

    def _run(self, steps: Steps[Any]) -> Any:
        """Perform the steps of a call (protocol.py) and give their result:
        the blocking client returns it, the asyncio client returns an
        awaitable (a subclass implements it)."""
        raise NotImplementedError

    def _call(self, call: Call) -> Any:
        """A call that ends in one final frame, through the client's driver
        (MoltClient and AsyncMoltClient perform these steps inline)."""
        return self._run(call_steps(self, call))

    def _new_id(self) -> int:
        with self._id_lock:
            return next(self._ids)

    def _request_info(self, call: Call, rid: int, attempt: int) -> Optional[RequestInfo]:
        """The hooks' view of a request, given to ``before_send`` here; None
        when no hook is set (nothing to build on every call)."""
        if self.before_send is None and self.after_recv is None:
            return None
        info = RequestInfo(rid, call.entry, call.db_alias, call.tag, call.sql, attempt)
        if self.before_send is not None:
            self.before_send(info)
        return info

    def _after_recv(self, info: Optional[RequestInfo], resp: Response) -> None:
        """Give the final frame of a request to the ``after_recv`` hook."""
        if self.after_recv is not None and info is not None:
            elapsed = time.monotonic() - info.sent_at
            self.after_recv(info, ResponseInfo(resp.status, resp.metrics, elapsed, len(resp.payload)))

    def _timeout(self, timeout_ms: Optional[int]) -> Optional[int]:
        return check_timeout_ms(timeout_ms) or self.timeout_ms

    def _plain_call(self, write: bool, sql: Any, params: Params) -> Optional[Call]:
        """What _query_call (write: _exec_call) gives for query(sql, params)
        (execute(sql, params)) with every option at its default, built
        without the general layers: the same payload, key for key, and the
        same Call. None when sql or the client's db_alias is not plainly
        valid: the general path then raises its error. Bad params raise
        encode_params' error, as on the general path."""
        alias = self.db_alias
        if type(sql) is not str or type(alias) is not str or not alias or not sql.strip():
            return None
        payload: dict[str, Any] = {"db_alias": alias, "sql": sql, "result_format": "msgpack"}
        enc = encode_params(sql, params)
        if enc is not None:
            payload["params"] = enc
        if write:
            payload["allow_write"] = True
            return Call("db_exec", payload, self.timeout_ms, False, "exec", decoding=self.decoding)
        return Call("db_query", payload, self.timeout_ms, True, "query", decoding=self.decoding)

    def _query_call(
        self, sql: str, params: Params, *, db_alias: Optional[str], result_format: str,
        max_rows: Optional[int], timeout_ms: Optional[int], tag: Optional[str],
        row_shape: Optional[str], idempotent: bool,
        decode_numeric: Optional[str] = None, decode_json: Optional[bool] = None,
        tx_id: Optional[int] = None,
        pin_primary: bool = False,
    ) -> Call:
        if (db_alias is None and result_format == "msgpack" and max_rows is None and timeout_ms is None
                and tag is None and decode_numeric is None and decode_json is None and row_shape is None
                and idempotent is True and tx_id is None and pin_primary is False):
            call = self._plain_call(False, sql, params)
            if call is not None:
                return call
        payload = query_payload(
            sql, params, db_alias=db_alias or self.db_alias, result_format=result_format,
            max_rows=max_rows, tag=tag, row_shape=row_shape, tx_id=tx_id,
            pin_primary=pin_primary,
        )
        return Call("db_query", payload, self._timeout(timeout_ms), self._resendable(idempotent, tx_id), "query",
                    decoding=self.decoding.override(decode_numeric, decode_json))

    def _exec_call(
        self, sql: Optional[str], params: Params, *, statements: Optional[Sequence[tuple[str, Params]]],
        isolation: Optional[str], db_alias: Optional[str], result_format: str,
        timeout_ms: Optional[int], tag: Optional[str], idempotent: bool,
        decode_numeric: Optional[str] = None, decode_json: Optional[bool] = None,
        tx_id: Optional[int] = None,
    ) -> Call:
        if (statements is None and isolation is None and db_alias is None and result_format == "msgpack"
                and timeout_ms is None and tag is None and decode_numeric is None and decode_json is None
                and idempotent is False and tx_id is None):
            call = self._plain_call(True, sql, params)
            if call is not None:
                return call
        payload = exec_payload(
            sql, params, db_alias=db_alias or self.db_alias, result_format=result_format,
            tag=tag, statements=statements, isolation=isolation, tx_id=tx_id,
        )
        return Call("db_exec", payload, self._timeout(timeout_ms), self._resendable(idempotent, tx_id), "exec",
                    decoding=self.decoding.override(decode_numeric, decode_json))

    def _executemany_call(
        self, sql: str, seq_of_params: Any, *, isolation: Optional[str], db_alias: Optional[str],
        timeout_ms: Optional[int], tag: Optional[str], idempotent: bool,
        tx_id: Optional[int] = None,
    ) -> Optional[Call]:
        """One db_exec ``statements`` list: sql once per parameter set, in
        one transaction. None when there are no parameter sets."""
        if not isinstance(sql, str):
            raise InvalidInput("executemany(): sql must be a str", client_side=True)
        if isinstance(seq_of_params, (str, bytes)) or isinstance(seq_of_params, collections.abc.Mapping):
            raise InvalidInput("executemany(): seq_of_params must be a sequence of parameter sets",
                               client_side=True)
        rows = list(seq_of_params)
        if not rows:
            return None
        if len(rows) > MAX_STATEMENTS:
            raise InvalidInput(
                f"executemany(): {len(rows)} parameter sets; at most {MAX_STATEMENTS} run in one "
                "transaction (split them: each call is then its own transaction)", client_side=True,
            )
        return self._exec_call(
            None, None, statements=[(sql, p) for p in rows], isolation=isolation, db_alias=db_alias,
            result_format="msgpack", timeout_ms=timeout_ms, tag=tag, idempotent=idempotent,
            tx_id=tx_id,
        )

    def _copy_in_call(
        self, table: Any, rows: Any, *, columns: Optional[Sequence[str]], db_alias: Optional[str],
        timeout_ms: Optional[int],
    ) -> Optional[Call]:
        """copy_in (copying.py); None when there are no rows."""
        return copy_in_call(table, rows, columns=columns, db_alias=db_alias or self.db_alias,
                            timeout_ms=self._timeout(timeout_ms))

    def _copy_out_call(
        self, sql: str, *, db_alias: Optional[str], result_format: str, max_rows: Optional[int],
        timeout_ms: Optional[int], tag: Optional[str],
    ) -> Call:
        """copy_out: a db_query call under the copy_out entry (copying.py)."""
        return as_copy_out(self._query_call(
            sql, None, db_alias=db_alias, result_format=result_format, max_rows=max_rows,
            timeout_ms=timeout_ms, tag=tag, row_shape=None, idempotent=True,
        ))

    def _listen_call(self, channels: Sequence[str], *, db_alias: Optional[str]) -> Call:
        """listen (listening.py): its steps are ListenCore's, not one answer."""
        return listen_call(channels, db_alias=db_alias or self.db_alias)

    @staticmethod
    def _rows_affected(result: ExecResult) -> int:
        return sum(r.rows_affected or 0 for r in result.results)

    def _stream_call(
        self, sql: str, params: Params, *, db_alias: Optional[str], result_format: str,
        max_rows: Optional[int], batch_rows: Optional[int], timeout_ms: Optional[int], tag: Optional[str],
        decode_numeric: Optional[str] = None, decode_json: Optional[bool] = None,
        tx_id: Optional[int] = None,
        pin_primary: bool = False,
    ) -> Call:
        payload = query_payload(
            sql, params, db_alias=db_alias or self.db_alias, result_format=result_format,
            max_rows=max_rows, tag=tag, stream=True, batch_rows=batch_rows, tx_id=tx_id,
            pin_primary=pin_primary,
        )
        return Call("db_query", payload, self._timeout(timeout_ms), False, "query", stream=True,
                    decoding=self.decoding.override(decode_numeric, decode_json))

    @staticmethod
    def _admin_call(entry: str, timeout_ms: Optional[int]) -> Call:
        """ping and stats: no payload, always safe to resend."""
        return Call(entry, None, check_timeout_ms(timeout_ms), True, entry)

    @staticmethod
    def _resendable(idempotent: bool, tx_id: Optional[int]) -> bool:
        """A statement of a transaction is never resent after a worker
        death: the transaction died with it."""
        return idempotent and tx_id is None

    def _tx_call(self, entry: str, payload: dict[str, Any], timeout_ms: Optional[int]) -> Call:
        """tx_begin, tx_commit, tx_rollback (transaction.py): never resent."""
        return Call(entry, payload, self._timeout(timeout_ms), False, "tx")
