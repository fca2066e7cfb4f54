"""molt_db_adapter: the client for molt_worker (IPC contract version 1).

    from molt_db_adapter import MoltClient
    with MoltClient(["build/molt_worker", "--stdio", "--db", "default=sqlite:///app.db"]) as c:
        r = c.query("SELECT id, email FROM users WHERE id = $1", [7])
        r.columns, r.types, r.rows, r.dicts(), r.raw, r.metrics

``AsyncMoltClient`` is the same API for asyncio (``await c.query(...)``).
``InProcessClient`` / ``AsyncInProcessClient``: the same API on molt_db in
this process (the worker's arguments without the transport; docs/python.md).
``c.transaction()`` runs statements in one database transaction.
"""

from .async_client import AsyncMoltClient, AsyncQueryStream
from .calls import RequestInfo, ResponseInfo
from .errors import (
    Busy,
    Cancelled,
    ConnectionFailed,
    DbError,
    InternalError,
    InvalidInput,
    MoltError,
    ProtocolError,
    Timeout,
    WorkerStartError,
    WorkerUnavailable,
)
from .inprocess import AsyncInProcessClient, InProcessClient
from .listening import AsyncListener, Listener, Notification
from .params import Typed
from .results import ExecResult, QueryResult
from .sync_client import MoltClient, QueryStream
from .transaction import AsyncTransaction, Transaction

__all__ = [
    "MoltClient",
    "AsyncMoltClient",
    "InProcessClient",
    "AsyncInProcessClient",
    "QueryStream",
    "AsyncQueryStream",
    "Transaction",
    "AsyncTransaction",
    "QueryResult",
    "ExecResult",
    "Typed",
    "Notification",
    "Listener",
    "AsyncListener",
    "RequestInfo",
    "ResponseInfo",
    "MoltError",
    "InvalidInput",
    "Busy",
    "Timeout",
    "Cancelled",
    "DbError",
    "ConnectionFailed",
    "InternalError",
    "ProtocolError",
    "WorkerUnavailable",
    "WorkerStartError",
]
