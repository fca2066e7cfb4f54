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
