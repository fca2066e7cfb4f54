"""One compiled statement's trip to the worker: whether it may go, the
request, the rows converted back, and what a worker failure means (the
async path that awaits it is replay.py)."""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from django.db import OperationalError
from django.db.transaction import TransactionManagementError

from molt_db_adapter import (
    AsyncMoltClient, AsyncTransaction, Busy, DbError, InternalError, InvalidInput, MoltError, QueryResult,
    WorkerUnavailable,
)
from molt_db_adapter import c_rows
from molt_db_adapter.results import decode_payload

from . import events
from .conf import molt_settings, pin_primary, worker_alias
from .errors import django_error
from .rows import Unconvertible, convert_rows, pg_converters, session_zone, with_json_fields
from .sqlite_functions import django_registered, unsupported_reason
from .sqlite_values import FinalValue, sqlite_plans
from .statements import Unsupported, postgresql_client_bound, postgresql_server_bound, sqlite_statement
from .worker_tx import active_transaction


class Fallback(Exception):
    """This statement runs through the ORM; the message says why. ``warn``:
    log it as a warning (the worker is unavailable), not as a decision."""

    def __init__(self, reason: str, *, warn: bool = False) -> None:
        super().__init__(reason)
        self.warn = warn


_forced: contextvars.ContextVar[Optional[bool]] = contextvars.ContextVar("molt_offloading", default=None)


@contextlib.contextmanager
def offloading(enabled: bool = True) -> Iterator[None]:
    """Offload every read QuerySet evaluated in the block (enabled=False:
    none, even those marked with offload())."""
    token = _forced.set(enabled)
    try:
        yield
    finally:
        _forced.reset(token)


def offload_wanted(query: Any, alias: Optional[str] = None) -> bool:
    """offloading() first, then the query's mark, then an open
    worker_transaction() of ``alias``, then MOLT_DB["OFFLOAD"]."""
    block = _forced.get()
    if block is not None:
        return block
    mark = getattr(query, "molt_offload", None)
    if mark is None:
        mark = getattr(getattr(query, "inner_query", None), "molt_offload", None)
    if mark is not None:
        return bool(mark)
    if alias is not None and active_transaction(alias) is not None:
        return True
    return bool(molt_settings()["OFFLOAD"] == "all")


# ---- the statement as the worker takes it ----

@dataclass
class WorkerQuery:
    """A compiled read for the worker: ``sql``/``params`` in the worker's
    placeholder style, and what is needed to turn its rows into the
    driver's values."""

    alias: str                 # Django alias
    worker_alias: str
    vendor: str                # "postgresql" or "sqlite"
    sql: str
    params: list[Any]
    django_sql: str            # Django's own text (for logs and events)
    session_tz: str = "UTC"
    django_tz: Any = None
    django_params: Sequence[Any] = ()   # Django's own parameters (for the query log)
    key: tuple[Any, ...] = field(default=())
    #: the worker_transaction() it runs in (worker_tx.py), or None
    tx: Any = None
    #: PostgreSQL: columns of JSONFields whose values rows() parses as the
    #: field would, so the compiler skips the field's converter
    json_columns: tuple[int, ...] = ()
    #: SQLite: columns whose first Django converter rows() applies (the
    #: compiler then skips it), sqlite_values.py
    final_columns: dict[int, FinalValue] = field(default_factory=dict)
    #: values(): the keys of its dicts, one per column, when rows() gives
    #: them (no Django converter is left to run on the rows), else None
    dict_names: Optional[list[str]] = None

    def __post_init__(self) -> None:
        self.key = (self.worker_alias, self.sql, repr(self.params))
        self.tx = active_transaction(self.alias)

    def target(self, client: Any) -> Any:
        """What runs it: its worker transaction, or ``client``. A
        transaction of the other client kind (a sync worker_transaction()
        around an async evaluation, or the reverse) cannot serve it."""
        if self.tx is None:
            return client
        if isinstance(self.tx, AsyncTransaction) != isinstance(client, AsyncMoltClient):
            raise TransactionManagementError(
                "molt_django_adapter: evaluate QuerySets inside worker_transaction() with the "
                "sync API and inside aworker_transaction() with the async one")
        return self.tx

    def request(self) -> dict[str, Any]:
        return dict(db_alias=self.worker_alias, result_format="msgpack",
                    max_rows=molt_settings()["MAX_ROWS"], tag="django",
                    pin_primary=pin_primary(self.alias))

    def as_dicts(self, names: list[str]) -> None:
        """rows() gives dicts keyed by ``names`` (the replay table keeps
        them apart from the same statement's tuples)."""
        self.dict_names = names
        self.key = self.key + ("dicts", tuple(names))

    def rows(self, result: QueryResult) -> list[Any]:
        """The rows as tuples, or as dicts when as_dicts() named their keys."""
        names = self.dict_names
        doc = (self.c_doc(result.raw, json_columns=self.json_columns, columns=names)
               if result.codec == "msgpack" else None)
        if doc is not None:
            if doc.get("truncated"):
                raise Fallback(f"more than MAX_ROWS ({molt_settings()['MAX_ROWS']}) rows")
            return list(doc.get("rows", ()))
        if result.truncated:
            raise Fallback(f"more than MAX_ROWS ({molt_settings()['MAX_ROWS']}) rows")
        converters = self.converters(result.types)
        if self.json_columns:
            try:
                converters = with_json_fields(converters, result.types, self.json_columns)
            except Unconvertible as e:
                raise Fallback(f"result not convertible: {e}") from None
        rows: list[Any] = self.convert(result.rows, converters)
        # as Django's dict comprehension: a repeated name keeps its first place and its last value
        return rows if names is None else [dict(zip(names, r)) for r in rows]

    def c_doc(self, raw: bytes, types: Optional[list[str]] = None, json_columns: tuple[int, ...] = (),
              columns: Optional[list[str]] = None) -> Optional[dict[str, Any]]:
        """The payload with rows as Django's values, built in C, as tuples
        or as dicts keyed by ``columns`` (None: no C decoder, or a shape
        rows.py decodes)."""
        shape = dict(columns=columns, dicts=True) if columns is not None else {}
        try:
            if self.vendor == "sqlite":
                return c_rows.decode(raw, types, django=True, sqlite_plans=self.sqlite_plans, **shape)
            return c_rows.decode(raw, types, django=True, zone=session_zone(self.session_tz),
                                 django_tz=self.django_tz, json_columns=json_columns, **shape)
        except (ValueError, TypeError) as e:   # Unconvertible is a ValueError
            raise Fallback(f"result not convertible: {e}") from None

    def converters(self, types: Sequence[str]) -> list[Any]:
        try:
            if self.vendor == "postgresql":
                return list(pg_converters(types, self.session_tz, self.django_tz))
            return [p and p[1] for p in self.sqlite_plans(types)]
        except Unconvertible as e:
            raise Fallback(f"result not convertible: {e}") from None

    def sqlite_plans(self, types: Sequence[str]) -> tuple[Any, ...]:
        return sqlite_plans(types, self.final_columns)

    @staticmethod
    def convert(rows: Sequence[Sequence[Any]], converters: list[Any]) -> list[tuple[Any, ...]]:
        try:
            return convert_rows(rows, converters)
        except (Unconvertible, ValueError, TypeError) as e:
            raise Fallback(f"result not convertible: {e}") from None


def in_transaction(connection: Any) -> bool:
    """Inside atomic(), or autocommit off: the worker would not see this
    connection's uncommitted writes."""
    if connection.in_atomic_block or not connection.settings_dict.get("AUTOCOMMIT", True):
        return True
    return connection.connection is not None and not connection.autocommit


def check_transaction(connection: Any) -> None:
    if active_transaction(connection.alias) is not None:
        return  # worker_transaction(): what the block asked for
    if in_transaction(connection):
        if molt_settings()["IN_ATOMIC"] == "raise":
            raise TransactionManagementError(
                "molt_django_adapter: an offloaded query inside atomic() (or with autocommit off) "
                "would not see this transaction's writes (MOLT_DB['IN_ATOMIC'] is 'raise')"
            )
        raise Fallback("inside a transaction")


def worker_query(connection: Any, sql: str, params: Sequence[Any]) -> WorkerQuery:
    """Raises Fallback when the statement cannot go (and says why)."""
    from django.conf import settings

    from .clients import check_target
    from .conf import Uncarried

    alias = connection.alias
    try:
        check_target(alias)
    except Uncarried as e:
        raise Fallback(str(e)) from None
    wa = worker_alias(alias)
    params = list(params or ())
    try:
        if connection.vendor == "postgresql":
            if molt_settings()["PARAM_BINDING"] == "client":
                text = postgresql_client_bound(sql, params, settings.USE_TZ, connection.timezone)
                values: list[Any] = []
            else:
                text, values = postgresql_server_bound(sql, params)
            return WorkerQuery(alias, wa, "postgresql", text, values, sql,
                               connection.timezone_name, connection.timezone, params)
        text, values = sqlite_statement(sql, params)
    except Unsupported as e:
        raise Fallback(str(e)) from None
    return WorkerQuery(alias, wa, "sqlite", text, values, sql, django_params=params)


# ---- SQLite: which functions the worker has ----

_worker_functions: dict[str, frozenset[str]] = {}
_REGISTERED: Optional[frozenset[str]] = None
FUNCTION_LIST_SQL = "SELECT DISTINCT lower(name) FROM pragma_function_list"


def function_probe(q: WorkerQuery) -> Optional[WorkerQuery]:
    """The query listing the worker's SQLite functions, when not known yet."""
    if q.worker_alias in _worker_functions:
        return None
    return WorkerQuery(q.alias, q.worker_alias, "sqlite", FUNCTION_LIST_SQL, [], FUNCTION_LIST_SQL)


def learn_functions(probe: WorkerQuery, result: QueryResult) -> None:
    _worker_functions[probe.worker_alias] = frozenset(r[0] for r in result.rows)


def forget_functions() -> None:
    """A new worker may have other functions (clients.close_clients)."""
    _worker_functions.clear()


def check_sqlite_functions(q: WorkerQuery) -> None:
    global _REGISTERED
    if _REGISTERED is None:
        _REGISTERED = django_registered()
    reason = unsupported_reason(q.sql, _worker_functions.get(q.worker_alias, ()), _REGISTERED)
    if reason:
        raise Fallback(reason)


# ---- what a worker failure means ----

def on_worker_error(q: WorkerQuery, e: MoltError) -> None:
    """Raise Fallback, or the exception the caller should see."""
    if isinstance(e, DbError):
        raise Fallback(f"the worker's database refused it (SQLSTATE {e.sqlstate}): {e}")
    if isinstance(e, (InvalidInput, InternalError)):   # the worker could not take or answer it
        raise Fallback(f"the worker answered {type(e).__name__}: {e}")
    if isinstance(e, (WorkerUnavailable, Busy)) and molt_settings()["ON_UNAVAILABLE"] == "fallback":
        warnings.warn(f"molt worker unavailable, using the ORM: {e}", RuntimeWarning, stacklevel=4)
        raise Fallback(f"worker unavailable: {type(e).__name__}: {e}", warn=True)
    raise worker_failure(e)   # Timeout, Cancelled: the ORM would be as slow


def worker_failure(e: MoltError) -> OperationalError:
    err = OperationalError(f"molt worker: {type(e).__name__}: {e}")
    err.__cause__ = e
    return err


def _check_functions_sync(client: Any, q: WorkerQuery) -> None:
    if q.vendor == "sqlite":
        probe = function_probe(q)
        if probe is not None:
            learn_functions(probe, client.query(probe.sql, None, **probe.request()))
        check_sqlite_functions(q)


def run_sync(q: WorkerQuery) -> list[Any]:
    from .clients import get_client

    client = get_client()
    try:
        _check_functions_sync(client, q)
        result = q.target(client).query(q.sql, q.params or None, **q.request())
    except MoltError as e:
        on_worker_error(q, e)
        raise  # not reached
    return q.rows(result)


def stream_sync(q: WorkerQuery, chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of q in chunks, streamed from the worker (iterator()). The
    first part (columns and types) is read before returning, so a refusal
    still falls back; a failure after rows were handed out cannot, and is
    raised as OperationalError."""
    from .clients import get_client

    client = get_client()
    try:
        _check_functions_sync(client, q)
        stream = q.target(client).stream(q.sql, q.params or None, batch_rows=chunk_size, **q.request())
        parts = stream.chunks()
        first = decode_payload(stream.codec, next(parts))
    except MoltError as e:
        on_worker_error(q, e)
        raise  # not reached
    types = list(first.get("types", []))
    converters = q.converters(types)

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        with stream:
            try:
                for raw in parts:
                    doc = q.c_doc(raw, types) if stream.codec == "msgpack" else None
                    if doc is not None and "columns" not in doc:
                        if doc.get("truncated"):
                            raise OperationalError(f"molt worker: more than MAX_ROWS ({molt_settings()['MAX_ROWS']}) rows")
                        if doc.get("rows"):
                            yield list(doc["rows"])
                        continue
                    part = decode_payload(stream.codec, raw)
                    if part.get("truncated"):
                        raise OperationalError(f"molt worker: more than MAX_ROWS ({molt_settings()['MAX_ROWS']}) rows")
                    if part.get("rows"):
                        yield q.convert(part["rows"], converters)
            except MoltError as e:
                raise worker_failure(e) from e
            except Fallback as e:
                raise OperationalError(f"molt worker: {e}") from None

    return chunks()


def run_write(q: WorkerQuery) -> int:
    """An UPDATE/DELETE through db_exec; the database's error as Django's class."""
    from .clients import get_client

    try:
        r = get_client().execute(q.sql, q.params or None, db_alias=q.worker_alias, result_format="msgpack", tag="django")
    except DbError as e:
        raise django_error(e) from e
    except MoltError as e:
        raise worker_failure(e) from e
    return int(r.rows_affected or 0)

