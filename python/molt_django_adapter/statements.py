"""Django's compiled (sql, params) as the worker takes them.

Django writes ``%s`` placeholders (``%%`` for a literal percent sign).
- SQLite: each ``%s`` becomes ``$n`` (the worker rewrites it to ``?n``), the
  way Django's own SQLite cursor turns them into ``?``, also where it keeps a
  ``%s`` right after ``%%`` as text (an EXPLAIN with
  parameters stays on the ORM: ``?n`` changes its node ids); values are adapted
  with the sqlite3 module's adapters (the ones Django registers: Decimal,
  date, datetime), so the worker binds what sqlite3 would bind.
- PostgreSQL, PARAM_BINDING "client" (the default, like Django's psycopg 3
  backend): psycopg's own client-side merging with Django's adapters
  template (its public ``psycopg.sql.Literal``), so the text that reaches
  the server is what Django would send.
- PostgreSQL, PARAM_BINDING "server": ``%s`` becomes ``$n`` (read left to
  right as psycopg reads it: ``%%%s`` is ``%`` and a parameter) and each value
  goes with the type psycopg would give it (docs/django.md: what breaks).
"""

from __future__ import annotations

import datetime
import functools
import itertools
import decimal
import json
import re
import sqlite3
import uuid
from typing import Any, Sequence

import django

from molt_db_adapter import Typed

from .sqlite_functions import RejectedTimeZoneName

#: ``%%`` (a literal percent sign) or ``%s`` (a parameter), read left to
#: right as psycopg reads them: ``%%%s`` is a percent sign, then a parameter
_PERCENT_OR_PLACEHOLDER = re.compile(r"%%|%s")
#: Django's SQLite cursor (SQLiteCursorWrapper.convert_query) takes a ``%s``
#: right after a ``%`` for text, so ``%%%s`` is no parameter there
_SQLITE_PLACEHOLDER = re.compile(r"(?<!%)%s")


class Unsupported(Exception):
    """This statement cannot go to the worker (the reason is the message)."""


def _pg_dollar_numbered(sql: str) -> str:
    counter = itertools.count(1)
    return _PERCENT_OR_PLACEHOLDER.sub(lambda m: "%" if m.group() == "%%" else f"${next(counter)}", sql)


def _sqlite_dollar_numbered(sql: str) -> str:
    counter = itertools.count(1)
    return _SQLITE_PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql).replace("%%", "%")


# ---- SQLite ----

def _sqlite_value(v: Any) -> Any:
    if isinstance(v, RejectedTimeZoneName):
        raise Unsupported(f"Django {django.get_version()}'s SQLite functions reject the time zone name {str(v)!r} (the worker follows Django 5.x)")
    adapter = sqlite3.adapters.get((type(v), sqlite3.PrepareProtocol))
    if adapter is not None:
        v = adapter(v)
    if isinstance(v, bool):
        return int(v)
    if v is None or isinstance(v, (int, float, str, bytes)):
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise Unsupported(f"a {type(v).__name__} parameter has no sqlite3 adapter")


def sqlite_statement(sql: str, params: Sequence[Any]) -> tuple[str, list[Any]]:
    if params and sql.startswith("EXPLAIN"):
        # the worker binds ?NNN where Django binds ?: other bytecode, so
        # EXPLAIN QUERY PLAN would show other node ids than Django's
        raise Unsupported("EXPLAIN with parameters (the worker's numbered parameters change the plan's node ids)")
    return _sqlite_dollar_numbered(sql), [_sqlite_value(v) for v in params]


# ---- PostgreSQL ----

@functools.lru_cache(maxsize=None)
def _adapt_context(use_tz: bool, tz: Any) -> Any:
    """An AdaptContext without a connection, with the adapters Django gives
    its psycopg connections."""
    from django.db.backends.postgresql.psycopg_any import get_adapters_template  # type: ignore[import-untyped]  # not in django-stubs

    class Context:
        adapters = get_adapters_template(use_tz, tz)
        connection = None

    return Context()


#: a percent sign and what follows it: ``%s`` a parameter, ``%%`` a literal
#: percent sign, anything else (or a lone ``%`` at the end) an error, as in
#: psycopg's client-side cursor
_PERCENT = re.compile(r"%(.|\Z)", re.DOTALL)


def postgresql_client_bound(sql: str, params: Sequence[Any], use_tz: bool, tz: Any) -> str:
    """The query text psycopg's ClientCursor would send for Django: each
    ``%s`` replaced by the parameter's literal as psycopg writes it (through
    ``psycopg.sql.Literal`` with Django's adapters), ``%%`` by ``%``."""
    context = _adapt_context(use_tz, tz)
    pieces: list[str] = []
    taken = 0
    end = 0
    for m in _PERCENT.finditer(sql):
        pieces.append(sql[end:m.start()])
        end = m.end()
        if m.group(1) == "%":
            pieces.append("%")
        elif m.group(1) == "s" and taken < len(params):
            pieces.append(_client_literal(params[taken], context))
            taken += 1
        elif m.group(1) == "s":
            raise Unsupported(f"the query has more placeholders than the {len(params)} parameter(s)")
        else:
            raise Unsupported(f"only %s and %% may follow a percent sign, not {m.group(0)!r}")
    if taken != len(params):
        raise Unsupported(f"the query has {taken} placeholder(s) for {len(params)} parameter(s)")
    pieces.append(sql[end:])
    return "".join(pieces)


def _client_literal(value: Any, context: Any) -> str:
    from psycopg.sql import Literal

    try:
        return Literal(value).as_bytes(context).decode("utf-8")
    except Exception as e:  # psycopg's ProgrammingError/DataError on a value it cannot dump
        raise Unsupported(f"psycopg cannot merge the parameters: {e}") from None


def _pg_typed(v: Any) -> Any:
    from psycopg.types.json import Json, Jsonb

    if v is None or isinstance(v, str):
        return v                      # unknown: the server infers it, as for a literal
    if isinstance(v, bool):
        return Typed(v, "bool")
    if isinstance(v, int):   # psycopg: the smallest type that holds the value
        for name, bits in (("int2", 15), ("int4", 31), ("int8", 63)):
            if -(1 << bits) <= v < (1 << bits):
                return Typed(v, name)
        return Typed(str(v), "numeric")
    if isinstance(v, float):
        return Typed(v, "float8")
    if isinstance(v, decimal.Decimal):
        return Typed(v, "numeric")
    if isinstance(v, uuid.UUID):
        return Typed(v, "uuid")
    if isinstance(v, datetime.datetime):
        return Typed(v, "timestamptz" if v.utcoffset() is not None else "timestamp")
    if isinstance(v, datetime.date):
        return Typed(v, "date")
    if isinstance(v, datetime.time):
        return Typed(v, "timetz" if v.utcoffset() is not None else "time")
    if isinstance(v, datetime.timedelta):
        return Typed(f"{v.days} days {v.seconds} seconds {v.microseconds} microseconds", "interval")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return Typed(bytes(v), "bytea")
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return Typed(_text_array(v), "_text")   # JSON key paths (#> %s)
    if isinstance(v, (Json, Jsonb)):
        return Typed((v.dumps or json.dumps)(v.obj), "jsonb" if isinstance(v, Jsonb) else "json")
    raise Unsupported(f"a {type(v).__name__} parameter cannot be bound server-side")


def _text_array(items: Sequence[str]) -> str:
    quoted = ('"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"' for x in items)
    return "{" + ",".join(quoted) + "}"


def postgresql_server_bound(sql: str, params: Sequence[Any]) -> tuple[str, list[Any]]:
    return _pg_dollar_numbered(sql), [_pg_typed(v) for v in params]
