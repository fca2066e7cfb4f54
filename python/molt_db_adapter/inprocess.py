"""InProcessClient and AsyncInProcessClient: MoltClient's and
AsyncMoltClient's API on molt_db's host in this process instead of a
molt_worker process (docs/python.md). Created from the worker's arguments
without the program and the transport:

    InProcessClient(["--db", "default=postgresql://...", "--allow-write", "default"])

The calls, results, exceptions, timeouts, hooks and cancellation are the
worker clients' own (the same steps of protocol.py, driven by the same
drivers); only the exchange differs (host_exchange.py), which holds one
host session, so transactions (``transaction()``, ``tx_id``) work as on a
worker connection.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Optional, Sequence

from .async_client import AsyncMoltClient
from .calls import Call, ConnectionLost, finish
from .errors import InvalidInput
from .host_exchange import AsyncHostExchange, SyncHostExchange, host_args
from .params import Params
from .protocol import Request, cancel, next_attempt
from .results import ExecResult, QueryResult
from .sync_client import MoltClient

__all__ = ["InProcessClient", "AsyncInProcessClient"]

class _InProcess:
    """The target: the worker's arguments instead of a command or socket."""

    host_args: list[str]

    def _set_target(self, worker_cmd: Optional[Sequence[str]], socket_path: Optional[str]) -> None:
        if socket_path is not None:
            raise InvalidInput("the in-process client takes the worker's arguments, not a socket",
                               client_side=True)
        self.host_args = host_args(worker_cmd if worker_cmd is not None else [])
        self.worker_cmd = None
        self.socket_path = None

    @property
    def worker_pid(self) -> Optional[int]:
        """This process, the one that serves the requests (None before the
        first call made the host)."""
        return os.getpid() if getattr(self, "_conn", None) is not None else None


class InProcessClient(_InProcess, MoltClient):  # type: ignore[misc]
    """MoltClient's API on a host in this process; safe to share between
    threads. ``args``: molt_worker's arguments without the transport."""

    def _open_connection(self) -> SyncHostExchange:
        return SyncHostExchange(self.host_args, self.max_response_bytes)

    def query(self, sql: str, params: Params = None, **options: Any) -> QueryResult:
        """MoltClient.query. With every option at its default, on a client
        without hooks, made in one call into C (``Caller.plain``,
        docs/python.md "The fast path")."""
        conn = self._conn
        if not options and conn is not None:
            got = conn.caller.plain(self, sql, params, False)
            if got is not None:
                result: QueryResult = got if type(got) is not tuple else self._handed(False, sql, params, got)
                return result
        return MoltClient.query(self, sql, params, **options)

    def execute(self, sql: Optional[str] = None, params: Params = None, **options: Any) -> ExecResult:
        """MoltClient.execute; with every option at its default, as query."""
        conn = self._conn
        if not options and conn is not None:
            got = conn.caller.plain(self, sql, params, True)
            if got is not None:
                done: ExecResult = got if type(got) is not tuple else self._handed(True, sql, params, got)
                return done
        return MoltClient.execute(self, sql, params, **options)

    def _handed(self, write: bool, sql: Any, params: Params, handed: tuple[Any, ...]) -> Any:
        """A plain call the C caller handed to the general path: its Call,
        as the general path builds it, goes on from there."""
        call = self._plain_call(write, sql, params)
        assert call is not None  # the C caller takes no call that _plain_call leaves
        return self._after_fast(call, *handed)

    def _call(self, call: Call, attempt: int = 0) -> Any:
        """A one-shot call: without hooks, made in C while no other thread
        drives the host (``Caller.call``); what it hands back, and every
        other call, the general path's way."""
        if attempt or self.before_send is not None or self.after_recv is not None:
            return MoltClient._call(self, call, attempt)
        wait = call.wait_seconds(self.grace_ms, self.client_timeout_s)
        # the lock only to make a new exchange (a closed client has none)
        conn: Any = self._conn
        if conn is None or conn.dead:
            conn = self._connection()
        got = conn.caller.call(self, call, wait)
        if got is None:
            return MoltClient._call(self, call)
        if type(got) is not tuple:
            return got
        return self._after_fast(call, *got)

    def _after_fast(self, call: Call, req: Optional[Request], exc: Optional[BaseException], wait: float,
                    start: float) -> Any:
        """A call the C caller handed over at ``req`` (None: the host
        refused it, ``exc`` the ConnectionLost), ``wait`` s after ``start``
        (time.monotonic): an interruption cancels the request and is raised;
        else the final frame is waited for, and a lost host resends an
        idempotent call, as on the general path."""
        try:
            if exc is not None:
                if req is not None:  # interrupted: the request may run, stop it
                    cancel(self, req)
                raise exc
            assert req is not None
            resp = self._response(req, wait - (time.monotonic() - start), wait)
        except ConnectionLost as lost:
            return MoltClient._call(self, call, next_attempt(self, call, lost, 0))
        return finish(call, resp)

    def _wait(self, req: Request, timeout: float) -> Any:
        conn: SyncHostExchange = req.conn  # type: ignore[assignment]
        return conn.wait(req.slot, timeout)


class AsyncInProcessClient(_InProcess, AsyncMoltClient):  # type: ignore[misc]
    """AsyncMoltClient's API on a host in this process: the host's fd is in
    the event loop; use it from one loop."""

    async def _open_connection(self) -> AsyncHostExchange:
        return AsyncHostExchange(self.host_args, self.max_response_bytes, asyncio.get_running_loop())

    async def query(self, sql: str, params: Params = None, *, result_format: str = "msgpack",
                    **options: Any) -> QueryResult:
        """AsyncMoltClient.query. With every option at its default
        (``result_format="msgpack"`` named or not), on a client without
        hooks, made in C up to the await (``AsyncHostExchange.submit_plain``)
        and answered with the QueryResult the host's turn made in C (rows
        decoded, ``_host.drain``), without a Call."""
        conn = self._conn
        if conn is not None and not options and result_format == "msgpack" and not self._closed:
            waiter = conn.submit_plain(self, sql, params, False)
            if waiter is not None:
                try:
                    got = await waiter
                except BaseException as why:  # task cancelled, or past its deadline
                    self._gave_up(conn, waiter, why, self._plain_wait(False, sql, params))
                if type(got) is QueryResult:  # made by the host's turn in C, rows decoded
                    return got
                result: QueryResult = await self._plain_rest(conn, waiter, got, False, sql, params)
                return result
        return await AsyncMoltClient.query(self, sql, params, result_format=result_format, **options)

    async def execute(self, sql: Optional[str] = None, params: Params = None, **options: Any) -> ExecResult:
        """AsyncMoltClient.execute; with every option at its default, as query."""
        conn = self._conn
        if conn is not None and not options and not self._closed:
            waiter = conn.submit_plain(self, sql, params, True)
            if waiter is not None:
                try:
                    got = await waiter
                except BaseException as why:
                    self._gave_up(conn, waiter, why, self._plain_wait(True, sql, params))
                done: ExecResult = await self._plain_rest(conn, waiter, got, True, sql, params)
                return done
        return await AsyncMoltClient.execute(self, sql, params, **options)

    def _plain_wait(self, write: bool, sql: Any, params: Params) -> float:
        call = self._plain_call(write, sql, params)
        assert call is not None  # the C side submits no call that _plain_call leaves
        return call.wait_seconds(self.grace_ms, self.client_timeout_s)

    async def _plain_rest(self, conn: Any, waiter: Any, got: Any, write: bool, sql: Any, params: Params) -> Any:
        """A plain call's answer other than a query's rows (an error, an
        execute's result, a lost host) the general way, from its Call."""
        call = self._plain_call(write, sql, params)
        assert call is not None
        try:
            return conn.result_of(call, got, waiter.request_id)
        except ConnectionLost as lost:
            attempt = next_attempt(self, call, await conn.why_lost(lost), 0)
        return await self._call(call, attempt)

    def close_without_loop(self) -> None:
        """Close from outside the client's event loop, once that loop has
        closed: frees the host (its streams end) without touching the loop."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close_without_loop()
