"""Differential: every DF1 construct of sql_df1_cases.py runs through the
real molt_worker, on a SQLite file and on PostgreSQL, and gives the rows
that the same question written by hand gives through sqlite3 and psycopg.

Reads compare rows (as multisets unless the case is ordered). Writes run
through db_exec; the RETURNING rows and the table afterwards are compared
with the hand-written write run on the same data.
"""

import os

import pytest

from sql_data import ITEMS
from molt_sql import table as build_table
from sql_df1_cases import CASES, build
from sql_sides import lite, pg, rows_of  # noqa: F401  (lite, pg: fixtures)
from worker_client import WORKER_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built")

READS = [c for c in CASES if not c.write]
WRITES = [c for c in CASES if c.write]


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


@pytest.mark.parametrize("db", ["lite", "pg"])
@pytest.mark.parametrize("case", READS, ids=[c.name for c in READS])
def test_read(request, db, case):
    check_read(request.getfixturevalue(db), case)


@pytest.mark.parametrize("db", ["lite", "pg"])
@pytest.mark.parametrize("case", WRITES, ids=[c.name for c in WRITES])
def test_write(request, db, case):
    check_write(request.getfixturevalue(db), case)


def test_reads_refuse_to_write(lite):
    """A write compiled by molt_sql sent as a query is refused by the
    worker (db_query is read-only): the table is unchanged."""
    from molt_db_adapter import DbError, InvalidInput

    sql, params = build(WRITES[0]).compile("sqlite")
    with pytest.raises((DbError, InvalidInput)):
        lite.client.query(sql, params)
    assert rows_of(lite.run("SELECT * FROM items"), False) == rows_of(ITEMS, False)


def test_writes_through_the_async_client_and_the_configured_defaults(lite, tmp_path):
    """await w.execute() on the client configure() set, then what the file
    holds, read back by sqlite3."""
    import asyncio
    import sqlite3

    import molt_sql
    from molt_db_adapter import AsyncMoltClient
    from molt_sql import table

    path = tmp_path / "a.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, qty integer)")
    I = table("items")

    async def run():
        cmd = [WORKER_BIN, "--stdio", "--db", f"default=sqlite:///{path}", "--allow-write", "default"]
        async with AsyncMoltClient(cmd) as client:
            molt_sql.configure(client, db_alias="default", dialect="sqlite")
            try:
                r = await I.insert([{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]).returning(I.id).execute()
                assert sorted(r.rows) == [(1,), (2,)] and r.rows_affected == 2
                r = await I.update({"qty": 7}).where(I.id == 2).execute()
                assert r.rows_affected == 1
                r = await I.delete().where(I.id == 1).execute()
                assert r.rows_affected == 1
                return await I.select(I.id, I.name, I.qty).fetch_all()
            finally:
                molt_sql.reset_configuration()

    assert asyncio.run(run()) == [(2, "b", 7)]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT * FROM items").fetchall() == [(2, "b", 7)]


def test_regex_match_on_postgres(pg):
    """matches() (PostgreSQL only): the rows of the hand-written ~."""
    U = build_table("users", schema=pg.schema)
    q = U.where(U.email.matches("^[a-z]+[0-9]?@austin\\.edu$")).select(U.id)
    got = rows_of(q.using(pg.client, "default", "postgres").fetch_all_sync(), False)
    want = rows_of(pg.run("SELECT id FROM users WHERE email ~ '^[a-z]+[0-9]?@austin\\.edu$'"), False)
    assert got == want and want
