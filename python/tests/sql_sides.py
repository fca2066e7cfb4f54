"""The two databases the molt_sql worker tests run on, as pytest fixtures:
a SQLite file and a PostgreSQL schema, both loaded with sql_data.py, each
with a real molt_worker (writes allowed) and a driver (sqlite3, psycopg)
for the hand-written side and for resetting the items table.

    from sql_sides import lite, pg  # noqa: F401  (fixtures)
"""

import datetime
import decimal
import itertools
import os
import sqlite3

import pytest

from molt_db_adapter import MoltClient
from sql_data import (
    EVENTS, EVENTS_DDL, ITEMS, ITEMS_DDL, ORDERS, ORDERS_DDL, USERS, USERS_DDL,
)
from worker_client import WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
APP_DSN = os.environ.get("MOLT_TEST_DSN_APP")
_schemas = itertools.count()


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
    SCHEMA = f"molt_sql_sides_{os.getpid()}_{next(_schemas)}"
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



