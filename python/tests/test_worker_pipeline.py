"""db_exec `statements` on PostgreSQL are pipelined on the transaction's
connection (worker/backend_pg.c, PIPELINE_WINDOW in flight): results stay in
statement order, the first failing statement is the one reported, and a
failure, cancel or timeout mid-batch leaves the table as it was and the
connection clean. A real worker (pool of one connection, so the next request
runs on the same server connection) on the PostgreSQL of scripts/with_pg.sh;
psycopg is the oracle for what the server holds."""
import os
import time

import pytest

from molt_db_adapter import DbError, MoltClient
from worker_client import WORKER_BIN, Worker, decode

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)"),
]


@pytest.fixture(scope="module")
def pg():
    psycopg = pytest.importorskip("psycopg")
    con = psycopg.connect(DSN, autocommit=True)
    con.execute("drop table if exists pl_rows")
    con.execute("create table pl_rows (id int primary key, v text check (v <> 'bad'))")
    yield con
    con.execute("drop table if exists pl_rows")
    con.close()


@pytest.fixture
def w(pg):
    pg.execute("delete from pl_rows")
    with Worker({"default": DSN}, "--allow-write", "default",
                "--pool", "default:max_conns=1") as wk:
        yield wk


def insert(i, v="x"):
    return {"sql": "insert into pl_rows values ($1, $2)",
            "params": {"mode": "positional", "values": [i, v]}}


def worker_backend_state(pg):
    """States of the worker's server connections (not ours)."""
    rows = pg.execute("select state from pg_stat_activity where datname = current_database() "
                      "and backend_type = 'client backend' and pid <> pg_backend_pid()").fetchall()
    return sorted(r[0] for r in rows)


def assert_clean(w, pg):
    """The one connection turns idle (not in a transaction: the worker
    answers a cancel at once, its ROLLBACK follows) and takes new work."""
    deadline = time.monotonic() + 2
    while worker_backend_state(pg) != ["idle"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert worker_backend_state(pg) == ["idle"]
    r = w.conn.call("db_exec", {"allow_write": True, "statements": [insert(-1), insert(-2)]})
    assert [x["rows_affected"] for x in decode(r)["results"]] == [1, 1]
    assert pg.execute("select array_agg(id order by id) from pl_rows").fetchone()[0] == [-2, -1]


def test_executemany_5000_rows_failing_at_3217_names_it_and_keeps_nothing(pg):
    pg.execute("delete from pl_rows")
    rows = [(i, "x") for i in range(5000)]
    rows[3216] = (3216, "bad")  # row 3,217 (statements[3216]) breaks the check
    cmd = [WORKER_BIN, "--stdio", "--db", f"default={DSN}", "--allow-write", "default",
           "--pool", "default:allow_privileged_role=true", "--pool", "default:max_conns=1"]
    with MoltClient(cmd) as c:
        with pytest.raises(DbError) as e:
            c.executemany("insert into pl_rows values ($1, $2)", rows)
        assert e.value.sqlstate == "23514"
        assert str(e.value).count("statements[3216]: ") == 1, str(e.value)
        assert pg.execute("select count(*) from pl_rows").fetchone() == (0,)
        # the same client and connection go on: all 5000 commit
        rows[3216] = (3216, "y")
        assert c.executemany("insert into pl_rows values ($1, $2)", rows) == 5000
    assert pg.execute("select count(*), sum(id) from pl_rows").fetchone() == (5000, sum(range(5000)))


def test_results_stay_in_statement_order_across_windows(w, pg):
    n = 700  # more than the window of 256
    stmts = [{"sql": "insert into pl_rows values ($1, 'r') returning id, v",
              "params": {"mode": "positional", "values": [i]}} for i in range(n)]
    r = w.conn.call("db_exec", {"allow_write": True, "statements": stmts})
    res = decode(r)["results"]
    assert [x["rows"] for x in res] == [[[i, "r"]] for i in range(n)]
    assert pg.execute("select count(*) from pl_rows").fetchone() == (n,)


def test_a_duplicate_late_in_the_batch_is_the_one_reported(w, pg):
    stmts = [insert(i) for i in range(2000)]
    stmts[1999] = insert(7)
    r = w.conn.call("db_exec", {"allow_write": True, "statements": stmts})
    assert r["status"] == "DbError" and r["sqlstate"] == "23505"
    assert r["error"].startswith("statements[1999]: duplicate key"), r["error"]
    assert pg.execute("select count(*) from pl_rows").fetchone() == (0,)
    assert_clean(w, pg)


def slow_batch():
    """500 inserts, one that sleeps 30 s, 500 more behind it."""
    return ([insert(i) for i in range(500)]
            + [{"sql": "insert into pl_rows select 100000 from pg_sleep(30) /* pl-slow */"}]
            + [insert(1000 + i) for i in range(500)])


def wait_active(pg, needle, within=5.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        n = pg.execute("select count(*) from pg_stat_activity where state = 'active' "
                       "and query like %s and pid <> pg_backend_pid()", (f"%{needle}%",)).fetchone()[0]
        if n:
            return True
        time.sleep(0.02)
    return False


def test_cancel_mid_batch_leaves_the_table_unchanged_and_the_connection_clean(w, pg):
    c = w.conn
    rid = c.request("db_exec", {"allow_write": True, "statements": slow_batch()}, timeout_ms=60000)
    assert wait_active(pg, "pl-slow")
    t0 = time.monotonic()
    cid = c.request("cancel", {"request_id": rid})
    got = {}
    for _ in range(2):
        x = c.recv()
        got[x["request_id"]] = x
    assert got[rid]["status"] == "Cancelled", got[rid]
    assert decode(got[cid]) == {"found": True}
    assert time.monotonic() - t0 < 2.0  # not the 30 s sleep
    assert pg.execute("select count(*) from pl_rows").fetchone() == (0,)
    assert_clean(w, pg)


def test_timeout_mid_batch_leaves_the_table_unchanged(w, pg):
    t0 = time.monotonic()
    r = w.conn.call("db_exec", {"allow_write": True, "statements": slow_batch()}, timeout_ms=1000)
    assert r["status"] == "Timeout", r
    assert time.monotonic() - t0 < 3.0
    assert pg.execute("select count(*) from pl_rows").fetchone() == (0,)
    assert_clean(w, pg)


def test_a_new_sql_text_is_not_overtaken_by_cached_ones_behind_it(w, pg):
    # the UPDATE's text needs a Parse; the INSERTs behind it are cached
    stmts = ([insert(0)] + [{"sql": "update pl_rows set v = v || '!'"}]
             + [insert(i) for i in range(1, 600)])
    r = w.conn.call("db_exec", {"allow_write": True, "statements": stmts})
    res = decode(r)["results"]
    assert [x["rows_affected"] for x in res] == [1] * 601
    assert pg.execute("select array_agg(id) from pl_rows where v = 'x!'").fetchone()[0] == [0]
    assert pg.execute("select count(*) from pl_rows where v = 'x'").fetchone() == (599,)
