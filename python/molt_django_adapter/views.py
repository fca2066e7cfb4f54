"""@molt_offload: a view whose JSON rows are written by molt_worker.

The view builds its queries (QuerySets, compiled by Django's own compiler,
or ``(sql, params)`` in the worker's ``$n`` / ``:name`` style) and returns
what the body should hold; the worker runs them (db_query, result_format
json, row_shape objects) and the rows it wrote go into the HTTP body as
bytes, never decoded in Python::

    @molt_offload(timeout_ms=2000)
    def items(request):
        page = Rows(Item.objects.filter(...).values("title", "id")[:51], max_rows=50)
        return {"items": page, "next_cursor": page.next_cursor("id"),
                "counts": Pairs(Item.objects.values("status").annotate(n=Count("id")).order_by())}

A view may return a ``Rows`` (the body is the rows array), a dict whose
values are ``Rows``, ``Pairs``, cursors, nested dicts or plain JSON values,
or any HttpResponse (passed through untouched, e.g. a 400 for bad input).
``async def`` views use the asyncio client: when an ASGI client disconnects
Django cancels the view's task and the client sends ``cancel`` to the
worker. Errors become small JSON bodies (see ``STATUS``), never a stack
trace, SQL text or DSN; the full error is logged on the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import re
from typing import Any, Callable, Optional, Sequence, Union

from django.core.exceptions import EmptyResultSet
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from django.db.models.query import QuerySet
from django.http import HttpRequest, HttpResponse

from molt_db_adapter import Busy, ConnectionFailed, InternalError, InvalidInput, MoltError, Timeout, WorkerUnavailable

from .clients import get_async_client, get_client
from .conf import pin_primary, worker_alias
from .execution import Fallback, worker_query

__all__ = ["molt_offload", "Rows", "Pairs", "worker_sql", "STATUS"]

log = logging.getLogger("molt_django_adapter.views")

#: a QuerySet, or (sql, params) for the worker as it is
Query = Union[QuerySet[Any], tuple[str, Sequence[Any]]]

#: HTTP status and the only message a client sees, per error class
#: (``Busy`` may be set to 503 with ``molt_offload(busy_status=503)``)
STATUS: list[tuple[type, int, str]] = [
    (WorkerUnavailable, 503, "the database worker is unavailable"),
    (ConnectionFailed, 503, "the database is unavailable"),  # before MoltError: a DbError
    (Busy, 429, "the database worker is busy; retry later"),
    (Timeout, 504, "the query took too long"),
    (InvalidInput, 400, "the query input was rejected"),
    (MoltError, 500, "database error"),  # DbError, InternalError, Cancelled, ...
]


# ---------------------------------------------------------------- queries

def worker_sql(query: Query, using: Optional[str] = None) -> tuple[str, Sequence[Any], str]:
    """(sql, params, worker db_alias). A QuerySet is compiled by Django's
    own compiler (``query.get_compiler(using).as_sql()``) and bound the way
    the offloaded QuerySets are (statements.py: PARAM_BINDING on PostgreSQL,
    sqlite3's adapters on SQLite). Raises EmptyResultSet when Django would
    not run a query at all (``__in=[]``)."""
    if isinstance(query, QuerySet):
        alias = using or query.db
        sql, params = query.query.get_compiler(using=alias).as_sql()
        try:
            q = worker_query(connections[alias], sql, params)
        except Fallback as e:
            raise InternalError(f"this query cannot go to the worker: {e}") from None
        return q.sql, q.params, q.worker_alias
    if isinstance(query, tuple) and len(query) == 2 and isinstance(query[0], str):
        return query[0], query[1], worker_alias(using or "default")
    raise TypeError(f"a query is a QuerySet or (sql, params), not {type(query).__name__}")


class _Node:
    """One worker query of a response."""

    def __init__(self, query: Query, *, using: Optional[str], max_rows: Optional[int], tag: Optional[str]):
        self.query, self.using, self.max_rows, self.tag = query, using, max_rows, tag
        self.raw: Optional[bytes] = None  # the worker's payload, once run
        self.empty = False

    def request(self) -> Optional[dict[str, Any]]:
        try:
            sql, params, alias = worker_sql(self.query, self.using)
        except EmptyResultSet:
            self.empty = True
            return None
        django_alias = self.using or (self.query.db if isinstance(self.query, QuerySet) else "default")
        return dict(sql=sql, params=params, db_alias=alias, result_format="json",
                    pin_primary=pin_primary(django_alias),
                    row_shape=self.row_shape, max_rows=self.max_rows, tag=self.tag)

    row_shape = "objects"

    def payload(self) -> bytes:
        """The worker's JSON payload (once the node has run)."""
        assert self.raw is not None
        return self.raw

    def json(self) -> bytes:
        raise NotImplementedError


class Rows(_Node):
    """A query whose rows reach the body as the worker wrote them: a JSON
    array of objects keyed by column name (name joined columns with
    ``values(alias=F("fk__col"))``). ``max_rows`` stops the worker there and
    marks the result truncated (fetch one row more with a slice to know)."""

    def __init__(self, query: Query, *, using: Optional[str] = None, max_rows: Optional[int] = None,
                 tag: Optional[str] = None):
        super().__init__(query, using=using, max_rows=max_rows, tag=tag)

    def _span(self) -> tuple[int, int]:
        """Start and end of the rows array inside the payload. Strings in a
        JSON text carry their quotes escaped, so ``,"rows":`` first and
        ``,"row_count":`` last are the payload's own keys."""
        raw = self.payload()
        start = raw.find(b',"rows":')
        end = raw.rfind(b',"row_count":')
        if not raw.startswith(b'{"columns":') or start < 0 or end < start:
            raise MoltError("the worker's JSON payload does not have the expected layout")
        return start + len(b',"rows":'), end

    def json(self) -> Any:
        if self.empty:
            return b"[]"
        start, end = self._span()
        return memoryview(self.payload())[start:end]

    @property
    def truncated(self) -> bool:
        return not self.empty and self.raw is not None and self.raw.endswith(b',"truncated":true}')

    def next_cursor(self, column: str) -> "_Cursor":
        """The last row's ``column`` when more rows existed than ``max_rows``,
        else None. ``column`` must be the last selected column and an
        integer: it is read from the end of the payload, not by decoding."""
        return _Cursor(self, column)


class _Cursor:
    def __init__(self, rows: Rows, column: str):
        self.rows = rows
        self.tail = re.compile(re.escape(json.dumps(column)).encode() + rb":(-?\d+)\}\]\Z")

    def json(self) -> bytes:
        if not self.rows.truncated:
            return b"null"
        start, end = self.rows._span()
        m = self.tail.search(self.rows.payload(), max(start, end - 64), end)
        if not m:
            raise ValueError("next_cursor(column): the column must be the last one selected and an integer")
        return m.group(1)


class Pairs(_Node):
    """A small two-column query (``values("status").annotate(n=Count("id"))``)
    as a JSON object {first column: second column}. This one is decoded: it
    is meant for a handful of rows (facet counts), not for pages."""

    row_shape = "arrays"

    def __init__(self, query: Query, *, using: Optional[str] = None, tag: Optional[str] = None):
        super().__init__(query, using=using, max_rows=None, tag=tag)

    def json(self) -> bytes:
        if self.empty:
            return b"{}"
        rows = json.loads(self.payload())["rows"]
        return _dumps({str(k): v for k, v in rows})


# ---------------------------------------------------------------- body

def _dumps(value: Any) -> bytes:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode()


def _nodes(spec: Any) -> list[_Node]:
    if isinstance(spec, _Node):
        return [spec]
    if isinstance(spec, dict):
        return [n for v in spec.values() for n in _nodes(v)]
    return []


def _body(spec: Any, out: list[Union[bytes, memoryview]]) -> None:
    if isinstance(spec, (_Node, _Cursor)):
        out.append(spec.json())
    elif isinstance(spec, dict):
        out.append(b"{")
        for i, (k, v) in enumerate(spec.items()):
            out.append((b"," if i else b"") + _dumps(str(k)) + b":")
            _body(v, out)
        out.append(b"}")
    else:
        out.append(_dumps(spec))


def _response(spec: Any) -> HttpResponse:
    out: list[Union[bytes, memoryview]] = []
    _body(spec, out)
    return HttpResponse(b"".join(out), content_type="application/json")


def _error_response(e: MoltError, busy_status: int) -> HttpResponse:
    for cls, status, message in STATUS:
        if isinstance(e, cls):
            break
    if isinstance(e, Busy):
        status = busy_status
    log.warning("molt_offload: %s (request_id %s, sqlstate %s): %s",
                e.status, e.request_id, e.sqlstate, e.message)
    body = {"error": {"status": e.status, "message": message}}
    resp = HttpResponse(_dumps(body), status=status, content_type="application/json")
    if status in (429, 503):
        resp["Retry-After"] = "1"
    return resp


# ---------------------------------------------------------------- running

#: threads that let a sync view have all its queries in flight at once
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="molt-offload")


def _requests(spec: Any) -> list[tuple[_Node, dict[str, Any]]]:
    """The nodes that need a worker request (EmptyResultSet ones do not)."""
    out = []
    for n in _nodes(spec):
        r = n.request()
        if r is not None:
            out.append((n, r))
    return out


def _store(todo: list[tuple[_Node, dict[str, Any]]], results: Sequence[Any]) -> None:
    """Each node's payload; the first error (all queries have ended) raised."""
    for (n, _), res in zip(todo, results):
        if isinstance(res, BaseException):
            raise res
        n.raw = res.raw


# ---------------------------------------------------------------- decorator

def molt_offload(view: Optional[Callable[..., Any]] = None, *, timeout_ms: Optional[int] = None,
                 busy_status: int = 429) -> Callable[..., Any]:
    """Decorate a view (sync or ``async def``) that returns a response spec
    (see the module doc). ``timeout_ms`` bounds each query (default
    MOLT_DB["TIMEOUT_MS"], then the worker's); ``busy_status`` is the status
    for Busy (429, or 503 for clients that only retry that)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if asyncio.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                spec = await fn(request, *args, **kwargs)
                if isinstance(spec, HttpResponse):
                    return spec
                try:
                    todo = _requests(spec)
                    client = get_async_client()
                    results = await asyncio.gather(*(client.query(**r, timeout_ms=timeout_ms) for n, r in todo),
                                                   return_exceptions=True)
                    _store(todo, results)
                except MoltError as e:
                    return _error_response(e, busy_status)
                return _response(spec)
            return async_view

        @functools.wraps(fn)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            spec = fn(request, *args, **kwargs)
            if isinstance(spec, HttpResponse):
                return spec
            try:
                todo = _requests(spec)
                client = get_client()
                # every query in flight at once (the worker multiplexes them)
                def run(r: dict[str, Any]) -> Any:
                    try:
                        return client.query(**r, timeout_ms=timeout_ms)
                    except MoltError as e:
                        return e
                futures = [_pool.submit(run, r) for _, r in todo[1:]]
                results = [run(todo[0][1])] if todo else []
                results += [f.result() for f in futures]
                _store(todo, results)
            except MoltError as e:
                return _error_response(e, busy_status)
            return _response(spec)
        return sync_view

    return decorate(view) if view is not None else decorate
