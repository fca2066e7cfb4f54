"""Raw values: the same SELECT through Django's own cursor (psycopg 3 or
sqlite3, as Django configures them) and through the worker with the
adapter's conversions give equal rows, types included. Also the SQLite
function scanner on SQL that tries to fool it."""

import pytest
from django.conf import settings
from django.db import OperationalError, connections
from django.test.utils import override_settings

from molt_django_adapter.execution import Fallback, run_sync, worker_query
from molt_django_adapter.sqlite_functions import called_functions
from parity.compare import snap

from conftest import ALIASES

PG_SELECTS = [
    "SELECT 1.50::numeric, 'NaN'::numeric, 12345678901234567890.123456789::numeric, -0.0::numeric",
    "SELECT 1::int2, 2::int4, 9223372036854775807::int8, true, 1.1::float4, 1e300::float8, 'NaN'::float8, 'Infinity'::float8",
    "SELECT 'x'::\"char\", 'nm'::name, 'ab  '::char(4), 'ü'::varchar, '<a/>'::xml",
    "SELECT interval '1 year 2 mons -3 days 04:05:06.7', interval '-14 mons', interval '0'",
    "SELECT '12:34:56.789+05:30'::timetz, '23:59:59.999999'::time, '2024-02-29'::date",
    "SELECT '2024-03-31 01:59:59.5'::timestamp, '2024-03-31 00:30:00+00'::timestamptz, '1999-12-31 23:00:00-08'::timestamptz",
    "SELECT ARRAY[1,2,NULL]::int4[], ARRAY[['a','b'],['c',NULL]]::text[], ARRAY[1.5]::numeric[], '{}'::int4[]",
    "SELECT '{\"a\": [1, 2.50, null]}'::json, '{\"b\": {\"c\": true}}'::jsonb, '10.0.0.1/8'::inet, '10.0.0.0/8'::cidr",
    "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '\\x00ff10'::bytea, NULL::int4, NULL::text",
]


@pytest.mark.skipif("pg" not in ALIASES, reason="needs PostgreSQL")
@pytest.mark.parametrize("use_tz", [True, False])
@pytest.mark.parametrize("sql", PG_SELECTS)
def test_postgresql_values_as_psycopg_gives_them(sql, use_tz):
    with override_settings(USE_TZ=use_tz):
        conn = connections["pg"]
        with conn.cursor() as c:
            c.execute(sql)
            expected = c.fetchall()
        got = run_sync(worker_query(conn, sql, []))
    assert snap(got) == snap(expected)


SQLITE_TABLE = """CREATE TABLE IF NOT EXISTS molt_values (
    b bool, d date, dt datetime, t time, ts timestamp, n decimal, v varchar(10), x text, r real, i integer, bl blob)"""
SQLITE_ROWS = [
    (1, "2024-02-29", "2024-03-31 01:59:59.5", "23:59:59.999999", "2024-03-31 00:30:00+00:00", "1.50", "ü", "x", 1.1, 7, b"\x00\xff"),
    (0, "1970-01-01", "2024-01-01 00:00:00", "00:00:00", "2024-01-01T12:00:00", 2, "", None, -0.5, -1, None),
    (None, None, None, None, None, None, None, "'); --", None, None, b""),
]


def test_sqlite_values_as_sqlite3_gives_them():
    conn = connections["default"]
    with conn.cursor() as c:
        c.execute("DROP TABLE IF EXISTS molt_values")
        c.execute(SQLITE_TABLE)
        for row in SQLITE_ROWS:
            c.execute("INSERT INTO molt_values VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)
    sql = "SELECT b, d, dt, t, ts, n, v, x, r, i, bl, b + 0, upper(v) FROM molt_values ORDER BY rowid"
    with conn.cursor() as c:
        c.execute(sql)
        expected = c.fetchall()
    got = run_sync(worker_query(conn, sql, []))
    assert snap(got) == snap(expected)


#: a percent sign then a parameter (7 % 3), the text '%s', a parameter
PERCENT_SQL = "SELECT 7 %%%s, '%%s', %s"


@pytest.mark.skipif("pg" not in ALIASES, reason="needs PostgreSQL")
@pytest.mark.parametrize("binding", ["client", "server"])
def test_postgresql_percent_before_placeholder_as_psycopg_reads_it(binding):
    conn = connections["pg"]
    with conn.cursor() as c:
        c.execute(PERCENT_SQL, [3, "x"])
        expected = c.fetchall()
    assert expected == [(1, "%s", "x")]
    with override_settings(MOLT_DB={**settings.MOLT_DB, "PARAM_BINDING": binding}):
        got = run_sync(worker_query(conn, PERCENT_SQL, [3, "x"]))
    assert snap(got) == snap(expected)


def test_sqlite_percent_before_placeholder_as_django_reads_it():
    """Django's SQLite cursor takes a %s right after %% for text: the
    statement fails there (a stray %); the worker gets the same text, refuses
    it, and the query falls back to the ORM, which raises as Django does."""
    conn = connections["default"]
    with conn.cursor() as c:
        c.execute("SELECT '%%s', %s", ["x"])
        assert c.fetchall() == [("%s", "x")]
        with pytest.raises(OperationalError, match='near "%"'):
            c.execute(PERCENT_SQL, [3, "x"])
    assert snap(run_sync(worker_query(conn, "SELECT '%%s', %s", ["x"]))) == snap([("%s", "x")])
    q = worker_query(conn, PERCENT_SQL, [3, "x"])
    assert q.sql == "SELECT 7 %%s, '%s', $1"
    with pytest.raises(Fallback):
        run_sync(q)


@pytest.mark.parametrize("sql, names", [
    ("SELECT django_date_trunc('day', \"d\", NULL, NULL) FROM t", {"django_date_trunc"}),
    ("SELECT 'md5(' || \"sha1(\" FROM t WHERE x = 'rand()'", set()),
    ("SELECT \"a\" FROM t WHERE \"a\" REGEXP %s", {"regexp"}),
    ("SELECT COUNT(*), STDDEV_POP (\"p\") FROM t -- lpad(\n WHERE b IN (1, 2)", {"count", "stddev_pop"}),
    ("SELECT CAST(\"p\" AS real), [weird(] FROM t /* sha256( */ WHERE EXISTS (SELECT 1)", set()),
    ("SELECT 'it''s sha1(' , Lower(\"x\") FROM t", {"lower"}),
])
def test_called_functions(sql, names):
    assert called_functions(sql) == names
