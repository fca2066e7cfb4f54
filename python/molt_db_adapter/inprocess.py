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
from .protocol import Request, next_attempt
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

    def _call(self, call: Call, attempt: int = 0) -> Any:
        """A one-shot call: without hooks, on the fast path while no other
        thread drives the host (SyncHostExchange.fast_call); what it hands
        back, and every other call, the general path's way."""
        if attempt or self.before_send is not None or self.after_recv is not None:
            return MoltClient._call(self, call, attempt)
        wait = call.wait_seconds(self.grace_ms, self.client_timeout_s)
        start = time.monotonic()
        # the lock only to make a new exchange (a closed client has none)
        conn: Any = self._conn
        try:
            if conn is None or conn.dead:
                conn = self._connection()
            got = conn.fast_call(self, call, wait)
            if got is None:
                return MoltClient._call(self, call)
            if type(got) is not Request:
                return got
            resp = self._response(got, wait - (time.monotonic() - start), wait)
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

    def close_without_loop(self) -> None:
        """Close from outside the client's event loop, once that loop has
        closed: frees the host (its streams end) without touching the loop."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close_without_loop()
