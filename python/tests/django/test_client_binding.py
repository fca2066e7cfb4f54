"""PARAM_BINDING "client": the text the adapter merges for the worker is,
to the byte, what Django's own psycopg connection composes for the same
(sql, params) (``connection.ops.compose_sql``, psycopg's ClientCursor).
bytea is the one exception: psycopg without a connection writes its escape
form (E'\\000...'), with one the hex form; the server reads the same value
(checked here too)."""

import datetime
import decimal
import uuid

import pytest
from django.conf import settings
from django.db import connections
from psycopg.types.json import Jsonb

from molt_django_adapter.statements import Unsupported, postgresql_client_bound

PG_ALIASES = [a for a in ("pg", "pg_chicago") if a in settings.DATABASES]

VALUES = [
    None, True, 0, -32769, 2**40, 2**70, 1.5, float("inf"), decimal.Decimal("-1.50"),
    "it's 100% \\ text", "é ☃", uuid.UUID(int=7),
    datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.timezone.utc),
    datetime.datetime(2024, 2, 29, 1, 2, 3), datetime.date(1999, 12, 31), datetime.time(4, 5, 6),
    datetime.timedelta(days=-1, seconds=5), [1, 2, None], ["a", "b'c"], Jsonb({"k": ["v", 1]}),
]


@pytest.mark.skipif(not PG_ALIASES, reason="needs PostgreSQL")
@pytest.mark.parametrize("alias", PG_ALIASES)
def test_client_bound_text_is_what_django_composes(alias):
    connection = connections[alias]
    connection.ensure_connection()
    sql = "SELECT %s, '100%%', %s WHERE 'a' LIKE '%%a'"
    for value in VALUES:
        params = [value, "tail"]
        ours = postgresql_client_bound(sql, params, settings.USE_TZ, connection.timezone)
        assert ours == connection.ops.compose_sql(sql, params), value


@pytest.mark.skipif(not PG_ALIASES, reason="needs PostgreSQL")
def test_client_bound_bytea_reads_back_as_the_same_bytes():
    connection = connections["pg"]
    value = bytes(range(256)) + b"'\\"
    text = postgresql_client_bound("SELECT %s", [value], settings.USE_TZ, connection.timezone)
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:  # psycopg's own; no params: the text as it is
        cursor.execute(text)
        assert bytes(cursor.fetchone()[0]) == value


@pytest.mark.parametrize("sql, params, message", [
    ("SELECT %s, %s", [1], "more placeholders"),
    ("SELECT %s", [1, 2], "1 placeholder(s) for 2"),
    ("SELECT %d", [1], "not '%d'"),
    ("SELECT 5 %", [], "not '%'"),
    ("SELECT %(name)s", {"name": 1}, "not '%('"),
])
def test_what_psycopg_would_refuse_is_unsupported(sql, params, message):
    with pytest.raises(Unsupported, match=message.replace("(", r"\(").replace(")", r"\)")):
        postgresql_client_bound(sql, list(params), True, datetime.timezone.utc)
