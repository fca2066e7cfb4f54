"""Running queries: which client and database alias a query goes to, and the
fetch helpers.

A query is bound explicitly (``q.using(client, "reports", "postgres")``) or
through the defaults set once with ``configure(...)``. The client is any
object with the molt_db_adapter ``query()`` signature: ``AsyncMoltClient``
for the ``await q.fetch_*()`` methods, ``MoltClient`` for ``*_sync``.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

from .dialect import Dialect, get_dialect
from .errors import BuildError

if TYPE_CHECKING:
    from .base import Query, Statement
    from .writes import Write

__all__ = ["Binding", "configure", "reset_configuration", "execute", "execute_sync"]


@dataclass(frozen=True)
class Binding:
    client: Any
    db_alias: Optional[str]
    dialect: Optional[Dialect]
    pin_primary: bool = False  # an alias with replicas: read on the primary

    @staticmethod
    def make(
        client: Any,
        db_alias: Optional[str],
        dialect: Union[str, Dialect, None],
        previous: Optional["Binding"],
        pin_primary: Optional[bool] = None,
    ) -> "Binding":
        if client is None and previous is not None:
            client = previous.client
        if not hasattr(client, "query"):
            raise BuildError(
                f"using(): {type(client).__name__} is not a client (expected a "
                "molt_db_adapter MoltClient or AsyncMoltClient)"
            )
        d = get_dialect(dialect) if dialect is not None else (previous.dialect if previous else None)
        alias = db_alias if db_alias is not None else (previous.db_alias if previous else None)
        if pin_primary is None:
            pin_primary = previous.pin_primary if previous else False
        return Binding(client, alias, d, bool(pin_primary))


@dataclass
class _Defaults:
    async_client: Any = None
    sync_client: Any = None
    db_alias: str = "default"
    dialect: Dialect = get_dialect("postgres")


_defaults = _Defaults()
_lock = threading.Lock()


def configure(
    client: Any = None,
    *,
    sync_client: Any = None,
    db_alias: Optional[str] = None,
    dialect: Union[str, Dialect, None] = None,
) -> None:
    """Set the defaults used by queries not bound with ``using()``.

    ``client`` may be an AsyncMoltClient or a MoltClient (each goes to its
    slot); ``sync_client`` sets the sync slot explicitly. ``dialect`` is the
    default alias's database (``postgres`` or ``sqlite``)."""
    with _lock:
        for c in (client, sync_client):
            if c is None:
                continue
            if not hasattr(c, "query"):
                raise BuildError(f"configure(): {type(c).__name__} is not a client")
            if inspect.iscoroutinefunction(c.query):
                _defaults.async_client = c
            else:
                _defaults.sync_client = c
        if db_alias is not None:
            _defaults.db_alias = db_alias
        if dialect is not None:
            _defaults.dialect = get_dialect(dialect)


def reset_configuration() -> None:
    """Forget the defaults (tests)."""
    global _defaults
    with _lock:
        _defaults = _Defaults()


def _resolve(q: "Statement", want_async: bool) -> tuple[Any, str, Dialect]:
    b = q.binding
    client = b.client if b is not None else None
    if client is not None and inspect.iscoroutinefunction(client.query) != want_async:
        client = None if b is None else client
        kind = "an AsyncMoltClient" if want_async else "a MoltClient"
        other = "fetch_*_sync()" if want_async else "await fetch_*()"
        raise BuildError(
            f"this query is bound to {type(b.client).__name__ if b else '?'}; "
            f"{'await fetch_*()' if want_async else 'fetch_*_sync()'} needs {kind} "
            f"(or use {other})"
        )
    if client is None:
        client = _defaults.async_client if want_async else _defaults.sync_client
    if client is None:
        kind = "AsyncMoltClient" if want_async else "MoltClient"
        raise BuildError(
            f"no {kind} to run this query: call molt_sql.configure(client) once, "
            "or bind the query with q.using(client, db_alias, dialect)"
        )
    alias = (b.db_alias if b is not None and b.db_alias is not None else None) or _defaults.db_alias
    dialect = (b.dialect if b is not None and b.dialect is not None else None) or _defaults.dialect
    return client, alias, dialect


def _query_kwargs(alias: str, fmt: str, timeout_ms: Optional[int], max_rows: Optional[int]) -> dict[str, Any]:
    kw: dict[str, Any] = {"db_alias": alias, "result_format": fmt}
    if timeout_ms is not None:
        kw["timeout_ms"] = timeout_ms
    if max_rows is not None:
        kw["max_rows"] = max_rows
    return kw


def _rows(result: Any, as_dict: bool) -> list[Any]:
    return list(result.dicts()) if as_dict else list(result.rows)


def _pin(q: "Query", kw: dict[str, Any]) -> dict[str, Any]:
    if q.binding is not None and q.binding.pin_primary:
        kw["pin_primary"] = True
    return kw


async def _run(q: "Query", fmt: str, timeout_ms: Optional[int], max_rows: Optional[int] = None) -> Any:
    client, alias, dialect = _resolve(q, True)
    sql, params = q.compile(dialect)
    return await client.query(sql, params, **_pin(q, _query_kwargs(alias, fmt, timeout_ms, max_rows)))


def _run_sync(q: "Query", fmt: str, timeout_ms: Optional[int], max_rows: Optional[int] = None) -> Any:
    client, alias, dialect = _resolve(q, False)
    sql, params = q.compile(dialect)
    return client.query(sql, params, **_pin(q, _query_kwargs(alias, fmt, timeout_ms, max_rows)))


async def fetch_all(q: "Query", *, as_dict: bool, timeout_ms: Optional[int]) -> list[Any]:
    return _rows(await _run(q, "msgpack", timeout_ms), as_dict)


async def fetch_one(q: "Query", *, as_dict: bool, timeout_ms: Optional[int]) -> Any:
    rows = _rows(await _run(q, "msgpack", timeout_ms, max_rows=1), as_dict)
    return rows[0] if rows else None


async def fetch_val(q: "Query", *, timeout_ms: Optional[int]) -> Any:
    rows = _rows(await _run(q, "msgpack", timeout_ms, max_rows=1), False)
    return rows[0][0] if rows else None


async def fetch_arrow(q: "Query", *, timeout_ms: Optional[int]) -> Any:
    return (await _run(q, "arrow_ipc", timeout_ms)).to_arrow()


def fetch_all_sync(q: "Query", *, as_dict: bool, timeout_ms: Optional[int]) -> list[Any]:
    return _rows(_run_sync(q, "msgpack", timeout_ms), as_dict)


def fetch_one_sync(q: "Query", *, as_dict: bool, timeout_ms: Optional[int]) -> Any:
    rows = _rows(_run_sync(q, "msgpack", timeout_ms, max_rows=1), as_dict)
    return rows[0] if rows else None


def fetch_val_sync(q: "Query", *, timeout_ms: Optional[int]) -> Any:
    rows = _rows(_run_sync(q, "msgpack", timeout_ms, max_rows=1), False)
    return rows[0][0] if rows else None


def fetch_arrow_sync(q: "Query", *, timeout_ms: Optional[int]) -> Any:
    return _run_sync(q, "arrow_ipc", timeout_ms).to_arrow()


# ---- writes: db_exec --------------------------------------------------------------

def _exec_call(w: "Write", want_async: bool, timeout_ms: Optional[int]) -> tuple[Any, str, list[object], dict[str, Any]]:
    client, alias, dialect = _resolve(w, want_async)
    sql, params = w.compile(dialect)
    kw: dict[str, Any] = {"db_alias": alias}
    if timeout_ms is not None:
        kw["timeout_ms"] = timeout_ms
    return client, sql, params, kw


async def execute(w: "Write", *, timeout_ms: Optional[int]) -> Any:
    client, sql, params, kw = _exec_call(w, True, timeout_ms)
    return await client.execute(sql, params, **kw)


def execute_sync(w: "Write", *, timeout_ms: Optional[int]) -> Any:
    client, sql, params, kw = _exec_call(w, False, timeout_ms)
    return client.execute(sql, params, **kw)
