"""Offloaded statements in Django's query log: ``connection.queries``
(CaptureQueriesContext, assertNumQueries) and the ``django.db.backends``
logger get what Django's debug cursor would record for the statement, when
Django records queries (DEBUG, or a test's force_debug_cursor)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from typing import Any, Sequence

from . import events
from .execution import WorkerQuery
from .statements import Unsupported, postgresql_client_bound

logger = logging.getLogger("django.db.backends")


def log_query(connection: Any, q: WorkerQuery, seconds: float) -> None:
    """Record q (run by the worker in ``seconds``) on Django's connection;
    in a replay round, only if the round is kept."""
    if connection.queries_logged:
        events.when_kept(lambda: _append(connection, q, seconds))


def _append(connection: Any, q: WorkerQuery, seconds: float) -> None:
    sql = executed_text(connection, q)
    params = tuple(q.django_params)
    connection.queries_log.append({"sql": sql, "time": "%.3f" % seconds})
    logger.debug("(%.3f) %s; args=%s; alias=%s", seconds, sql, params, connection.alias,
                 extra={"duration": seconds, "sql": sql, "params": params, "alias": connection.alias})


def executed_text(connection: Any, q: WorkerQuery) -> str:
    """connection.ops.last_executed_query() of the statement, without
    Django's connection (which may not be open, or not usable here)."""
    if not q.django_params:
        return q.django_sql
    if q.vendor == "sqlite":
        return q.django_sql % tuple(_sqlite_quoted(q.params))
    if not q.params:   # client-bound: q.sql is psycopg's merged text already
        return q.sql
    from django.conf import settings

    try:
        return postgresql_client_bound(q.django_sql, q.django_params, settings.USE_TZ, connection.timezone)
    except Unsupported:
        return q.django_sql


def _sqlite_quoted(values: Sequence[Any]) -> list[str]:
    """SQLite's QUOTE() of each bound value, as Django's SQLite backend
    quotes them for last_executed_query (in batches of 999 variables)."""
    out: list[str] = []
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        for start in range(0, len(values), 999):
            chunk = values[start:start + 999]
            out += db.execute("SELECT " + ", ".join(["QUOTE(?)"] * len(chunk)), chunk).fetchone()
    return out
