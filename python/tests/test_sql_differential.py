"""Differential: every DF1 construct of sql_df1_cases.py runs through the
real molt_worker, on a SQLite file and on PostgreSQL, and gives the rows
that the same question written by hand gives through sqlite3 and psycopg.

Reads compare rows (as multisets unless the case is ordered). Writes run
through db_exec; the RETURNING rows and the table afterwards are compared
with the hand-written write run on the same data.
"""

import datetime
import decimal
import os
import sqlite3

import pytest

from molt_db_adapter import MoltClient
from sql_data import (
    EVENTS, EVENTS_DDL, ITEMS, ITEMS_DDL, ORDERS, ORDERS_DDL, USERS, USERS_DDL,
)
from sql_df1_cases import CASES, build
from worker_client import WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
APP_DSN = os.environ.get("MOLT_TEST_DSN_APP")
SCHEMA = f"molt_sql_df1_{os.getpid()}"

pytestmark = pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built")

READS = [c for c in CASES if not c.write]
WRITES = [c for c in CASES if c.write]


def norm(v):
    """One form for values the two paths may type differently (numeric as
    Decimal or float, dates as objects or text)."""
    if isinstance(v, decimal.Decimal):
        v = float(v)
    if isinstance(v, float):
        return round(v, 9)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat(sep=" ") if isinstance(v, datetime.datetime) else v.isoformat()
    return v


def rows_of(rows, ordered):
    out = [tuple(norm(v) for v in r) for r in rows]
    if not ordered:
        out.sort(key=lambda r: tuple((v is None, str(type(v)), str(v)) for v in r))
    return out


class Side:
    """One database: how to reset the items table, run hand SQL, read a table."""

    def __init__(self, dialect, client, run, reset, schema=None):
        self.dialect, self.client, self.run, self.reset, self.schema = dialect, client, run, reset, schema


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    path = tmp_path_factory.mktemp("df1") / "df1.db"
    db = sqlite3.connect(path, isolation_level=None)
    for ddl in (USERS_DDL, ORDERS_DDL, EVENTS_DDL["sqlite"], ITEMS_DDL):
        db.execute(ddl)
    db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?)", USERS)
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", ORDERS)
    db.executemany("INSERT INTO events VALUES (?, ?, ?)", EVENTS)

    def reset():
        db.execute("DELETE FROM items")
        db.executemany("INSERT INTO items VALUES (?, ?, ?)", ITEMS)

    def run(sql):
        return db.execute(sql).fetchall()

    reset()
    cmd = [WORKER_BIN, "--stdio", "--db", f"default=sqlite:///{path}", "--allow-write", "default"]
    with MoltClient(cmd) as client:
        yield Side("sqlite", client, run, reset)
    db.close()


@pytest.fixture(scope="module")
def pg():
    if not (DSN and APP_DSN):
        pytest.skip("MOLT_TEST_DSN(_APP) not set (run under scripts/with_pg.sh)")
    psycopg = pytest.importorskip("psycopg")
    conn = psycopg.connect(DSN, autocommit=True)
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    try:
        conn.execute(f"SET search_path = {SCHEMA}")
        for ddl in (USERS_DDL, ORDERS_DDL, EVENTS_DDL["postgres"], ITEMS_DDL):
            conn.execute(ddl)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO users VALUES (%s, %s, %s, %s, %s)", USERS)
            cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", ORDERS)
            cur.executemany("INSERT INTO events VALUES (%s, %s, %s)", EVENTS)
        conn.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO molt_app")
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA {SCHEMA} TO molt_app")

        def reset():
            conn.execute("DELETE FROM items")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO items VALUES (%s, %s, %s)", ITEMS)

        def run(sql):
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

        reset()
        cmd = [WORKER_BIN, "--stdio", "--db", f"default={APP_DSN}", "--allow-write", "default"]
        with MoltClient(cmd, decode_numeric="decimal") as client:
            yield Side("postgres", client, run, reset, SCHEMA)
    finally:
        conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
        conn.close()


def hand_sql(side, case):
    return case.lite if side.dialect == "sqlite" and case.lite else case.pg


def check_read(side, case):
    q = build(case, side.schema).using(side.client, "default", side.dialect)
    got = rows_of(q.fetch_all_sync(), case.ordered)
    want = rows_of(side.run(hand_sql(side, case)), case.ordered)
    assert got == want, q.compile(side.dialect)
    assert want, f"{case.name}: the hand-written query returned no rows, so the case proves little"


def check_write(side, case):
    side.reset()
    w = build(case, side.schema).using(side.client, "default", side.dialect)
    result = w.execute_sync()
    got_returned = rows_of(result.rows, False)
    got_table = rows_of(side.run("SELECT * FROM items"), False)
    side.reset()
    want_returned = rows_of(side.run(hand_sql(side, case)), False)
    want_table = rows_of(side.run("SELECT * FROM items"), False)
    side.reset()
    assert got_returned == want_returned, w.compile(side.dialect)
    assert got_table == want_table, w.compile(side.dialect)
    assert want_table != rows_of(ITEMS, False) or case.name == "upsert_do_nothing", \
        f"{case.name}: the write changed nothing, so the case proves little"


@pytest.mark.parametrize("case", READS, ids=[c.name for c in READS])
def test_read_on_sqlite(lite, case):
    check_read(lite, case)


@pytest.mark.parametrize("case", READS, ids=[c.name for c in READS])
def test_read_on_postgres(pg, case):
    check_read(pg, case)


@pytest.mark.parametrize("case", WRITES, ids=[c.name for c in WRITES])
def test_write_on_sqlite(lite, case):
    check_write(lite, case)


@pytest.mark.parametrize("case", WRITES, ids=[c.name for c in WRITES])
def test_write_on_postgres(pg, case):
    check_write(pg, case)


def test_reads_refuse_to_write(lite):
    """A write compiled by molt_sql sent as a query is refused by the
    worker (db_query is read-only): the table is unchanged."""
    from molt_db_adapter import DbError, InvalidInput

    sql, params = build(WRITES[0]).compile("sqlite")
    with pytest.raises((DbError, InvalidInput)):
        lite.client.query(sql, params)
    assert rows_of(lite.run("SELECT * FROM items"), False) == rows_of(ITEMS, False)
