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
from typing import Any, Optional, Sequence

from .async_client import AsyncMoltClient
from .errors import InvalidInput
from .host_exchange import AsyncHostExchange, SyncHostExchange, host_args
from .protocol import Request
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
