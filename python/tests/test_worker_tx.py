"""Session-bound transactions (tx_begin / tx_commit / tx_rollback, tx_id on
db_query and db_exec) against a real worker, on a real PostgreSQL and on a
real SQLite file: isolation between two clients, commit and rollback,
savepoints, one request at a time, the idle timeout and tx_max_ms, the
caps, and the connection a vanished client leaves behind."""
import os
import socket
import time

import msgpack
import pytest

from worker_client import Worker, decode, WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = pytest.mark.skipif(not os.path.exists(WORKER_BIN),
                                reason=f"{WORKER_BIN} is not built")
BACKENDS = ["postgresql", "sqlite"]


def ok(resp):
    assert resp["status"] == "Ok", resp
    return decode(resp)


def begin(conn, **kw):
    return ok(conn.call("tx_begin", kw))["tx_id"]


def commit(conn, tx):
    return conn.call("tx_commit", {"tx_id": tx})


def rollback(conn, tx):
    return conn.call("tx_rollback", {"tx_id": tx})


def ex(conn, sql, tx=None, **kw):
    if tx is not None:
        kw["tx_id"] = tx
    return conn.call("db_exec", dict(sql=sql, allow_write=True, **kw))


def q(conn, sql, tx=None, **kw):
    if tx is not None:
        kw["tx_id"] = tx
    return conn.query(sql, **kw)


def rows(resp):
    return decode(resp)["rows"]


def vals(conn, table="tx_items", tx=None):
    return [r[0] for r in rows(q(conn, f"select v from {table} order by v", tx))]


@pytest.fixture(params=BACKENDS)
def dsn(request, tmp_path):
    if request.param == "postgresql":
        if not DSN:
            pytest.skip("MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)")
        return DSN
    return f"sqlite://{tmp_path / 'tx.db'}"


def fresh_table(w, table="tx_items"):
    assert ex(w.conn, f"drop table if exists {table}")["status"] == "Ok"
    assert ex(w.conn, f"create table {table}(v int primary key)")["status"] == "Ok"


def socket_worker(dsn, *args):
    return Worker({"default": dsn}, "--allow-write", "default", *args, stdio=False)


def test_commit_rollback_and_the_answers(dsn):
    with socket_worker(dsn) as w:
        fresh_table(w)
        c = w.conn
        b = ok(c.call("tx_begin", {}))
        assert b == {"tx_id": b["tx_id"], "depth": 0, "read_only": False, "ended": False}
        assert 0 < b["tx_id"] < 2 ** 53
        assert ex(c, "insert into tx_items values (1)", b["tx_id"])["status"] == "Ok"
        assert vals(c, tx=b["tx_id"]) == [1]
        assert ok(commit(c, b["tx_id"]))["ended"] is True
        t2 = begin(c)
        assert t2 == b["tx_id"] + 1  # counted up, never reused
        assert ex(c, "insert into tx_items values (2)", t2)["status"] == "Ok"
        assert ok(rollback(c, t2))["ended"] is True
        assert vals(c) == [1]
        # an ended transaction's id is unknown
        r = q(c, "select 1", t2)
        assert r["status"] == "InvalidInput" and f"unknown tx_id {t2}" in r["error"]
        assert ok(c.call("stats"))["worker"]["transactions"] == 0


def test_two_clients_see_isolation(dsn):
    with socket_worker(dsn) as w:
        fresh_table(w)
        a, b = w.conn, w.connect()
        assert ex(b, "insert into tx_items values (1)")["status"] == "Ok"
        t = begin(a, isolation="repeatable_read")
        assert vals(a, tx=t) == [1]
        assert ex(a, "insert into tx_items values (10)", t)["status"] == "Ok"
        # b does not see a's uncommitted row
        assert vals(b) == [1]
        if dsn.startswith("sqlite"):
            # SQLite: a holds the write lock (BEGIN IMMEDIATE); b's write waits
            # its busy timeout and is refused, a's snapshot stays
            assert commit(a, t)["status"] == "Ok"
            assert vals(b) == [1, 10]
            return
        # a's snapshot (repeatable read) does not see b's later commit
        assert ex(b, "insert into tx_items values (2)")["status"] == "Ok"
        assert vals(a, tx=t) == [1, 10]
        assert ok(commit(a, t))["ended"] is True
        assert vals(b) == [1, 2, 10]


def test_savepoints_by_nesting(dsn):
    with socket_worker(dsn) as w:
        fresh_table(w)
        c = w.conn
        t = begin(c)
        assert ex(c, "insert into tx_items values (1)", t)["status"] == "Ok"
        sp = ok(c.call("tx_begin", {"tx_id": t}))
        assert sp["tx_id"] == t and sp["depth"] == 1
        assert ex(c, "insert into tx_items values (2)", t)["status"] == "Ok"
        inner = ok(rollback(c, t))   # ROLLBACK TO the savepoint
        assert inner["depth"] == 0 and inner["ended"] is False
        assert ok(c.call("tx_begin", {"tx_id": t}))["depth"] == 1
        assert ex(c, "insert into tx_items values (3)", t)["status"] == "Ok"
        assert ok(commit(c, t))["depth"] == 0  # RELEASE
        assert vals(c, tx=t) == [1, 3]
        assert ok(commit(c, t))["ended"] is True
        assert vals(c) == [1, 3]


def test_an_error_then_a_savepoint_rollback_recovers(dsn):
    with socket_worker(dsn) as w:
        fresh_table(w)
        c = w.conn
        t = begin(c)
        assert ex(c, "insert into tx_items values (1)", t)["status"] == "Ok"
        ok(c.call("tx_begin", {"tx_id": t}))
        dup = ex(c, "insert into tx_items values (1)", t)
        assert dup["status"] == "DbError" and dup["sqlstate"] == "23505"
        ok(rollback(c, t))
        assert ex(c, "insert into tx_items values (2)", t)["status"] == "Ok"
        assert ok(commit(c, t))["ended"] is True
        assert vals(c) == [1, 2]


def test_commit_of_a_failed_postgresql_transaction_says_rolled_back():
    if not DSN:
        pytest.skip("MOLT_TEST_DSN is not set")
    with socket_worker(DSN) as w:
        fresh_table(w)
        c = w.conn
        t = begin(c)
        assert ex(c, "insert into tx_items values (1)", t)["status"] == "Ok"
        assert ex(c, "insert into tx_items values (1)", t)["sqlstate"] == "23505"
        after = q(c, "select 1", t)
        assert after["status"] == "DbError" and after["sqlstate"] == "25P02"
        r = commit(c, t)
        assert r["status"] == "DbError" and r["sqlstate"] == "25P02", r
        assert vals(c) == []
        assert q(c, "select 1", t)["status"] == "InvalidInput"  # ended anyway


def test_statements_and_streams_in_a_transaction(dsn):
    with socket_worker(dsn) as w:
        fresh_table(w)
        c = w.conn
        t = begin(c)
        r = c.call("db_exec", {"allow_write": True, "tx_id": t, "statements": [
            {"sql": f"insert into tx_items values ({i})"} for i in range(1, 51)]})
        assert r["status"] == "Ok", r
        s = c.query("select v from tx_items order by v", stream=True, batch_rows=10,
                    result_format="msgpack", tx_id=t)
        assert s["status"] == "Ok"
        got = [row[0] for p in s["parts"][1:]
               for row in msgpack.unpackb(p["payload"], raw=False)["rows"]]
        assert got == list(range(1, 51))
        assert ok(rollback(c, t))["ended"] is True
        assert vals(c) == []


def test_one_request_at_a_time(dsn):
    slow = ("select pg_sleep(0.5)" if not dsn.startswith("sqlite") else
            "with recursive r(i) as (select 1 union all select i + 1 from r "
            "where i < 3000000) select count(*) from r")
    with socket_worker(dsn) as w:
        c = w.conn
        t = begin(c)
        first = c.request("db_query", {"sql": slow, "tx_id": t})
        second = c.request("db_query", {"sql": "select 1", "tx_id": t})
        third = c.request("tx_commit", {"tx_id": t})
        got = {}
        while len(got) < 3:
            r = c.recv(10)
            got[r["request_id"]] = r
        assert got[first]["status"] == "Ok"
        for rid in (second, third):
            assert got[rid]["status"] == "InvalidInput"
            assert f"transaction {t} is busy with request {first}" in got[rid]["error"]
        assert rows(q(c, "select 2", t)) == [[2]]
        assert ok(commit(c, t))["ended"] is True


def test_idle_timeout_rolls_back_and_frees_the_connection(dsn):
    with socket_worker(dsn, "--tx-idle-timeout-ms", "300") as w:
        fresh_table(w)
        c = w.conn
        t = begin(c)
        assert ex(c, "insert into tx_items values (7)", t)["status"] == "Ok"
        time.sleep(0.15)
        assert rows(q(c, "select 1", t)) == [[1]]  # a request restarts the clock
        time.sleep(0.2)
        assert rows(q(c, "select 1", t)) == [[1]]
        time.sleep(0.6)
        r = q(c, "select 1", t)
        assert r["status"] == "InvalidInput" and "unknown tx_id" in r["error"]
        assert vals(c) == []
        assert ok(c.call("stats"))["worker"]["transactions"] == 0
        # the write lock / row lock is gone: another client writes at once
        other = w.connect()
        assert ex(other, "insert into tx_items values (7)", timeout_ms=2000)["status"] == "Ok"
    assert "idle longer than tx_idle_timeout_ms" in w.stderr


def test_tx_max_ms_bounds_a_busy_transaction(dsn):
    with socket_worker(dsn, "--tx-max-ms", "500") as w:
        fresh_table(w)
        c = w.conn
        t = begin(c)
        assert ex(c, "insert into tx_items values (1)", t)["status"] == "Ok"
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            r = q(c, "select 1", t)
            if r["status"] != "Ok":
                break
            time.sleep(0.05)
        assert r["status"] == "InvalidInput" and "unknown tx_id" in r["error"], r
        assert vals(c) == []


def test_a_running_request_past_tx_max_ms_is_answered_timeout():
    if not DSN:
        pytest.skip("MOLT_TEST_DSN is not set")
    with socket_worker(DSN, "--tx-max-ms", "300") as w:
        c = w.conn
        t = begin(c)
        t0 = time.monotonic()
        r = q(c, "select pg_sleep(5)", t)
        assert r["status"] == "Timeout" and "tx_max_ms" in r["error"], r
        assert time.monotonic() - t0 < 2
        assert q(c, "select 1", t)["status"] == "InvalidInput"


def test_caps_per_session_and_per_alias(dsn):
    size = "sqlite_conns" if dsn.startswith("sqlite") else "max_conns"
    with Worker({"default": dsn, "ro": dsn}, "--allow-write", "default",
                "--pool", f"ro:{size}=4",
                "--max-session-tx", "1", stdio=False) as w:
        a, b, c = w.conn, w.connect(), w.connect()
        t = begin(a, db_alias="ro")
        r = a.call("tx_begin", {"db_alias": "ro"})
        assert r["status"] == "Busy" and "max_session_tx" in r["error"]
        # 50% of 4 connections: the second session's transaction is the last
        begin(b, db_alias="ro")
        r = c.call("tx_begin", {"db_alias": "ro"})
        assert r["status"] == "Busy" and "tx_alias_share_pct" in r["error"], r
        # the rest of the pool still serves plain requests
        assert rows(q(c, "select 1", db_alias="ro")) == [[1]]
        assert ok(commit(a, t))["ended"] is True
        tc = begin(c, db_alias="ro")
        assert ok(rollback(c, tc))["ended"] is True


def test_a_vanished_client_leaves_its_connection_clean():
    """A client that disappears mid-transaction: its row lock is released
    and its session-level SET does not reach the next client (PostgreSQL,
    one pooled connection)."""
    if not DSN:
        pytest.skip("MOLT_TEST_DSN is not set")
    with Worker({"default": DSN}, "--allow-write", "default",
                "--pool", "default:max_conns=1", stdio=False) as w:
        fresh_table(w)
        assert ex(w.conn, "insert into tx_items values (1)")["status"] == "Ok"
        a = w.connect()
        t = begin(a)
        assert ex(a, "update tx_items set v = 100 where v = 1", t)["status"] == "Ok"
        assert ex(a, "set application_name = 'left_behind'", t)["status"] == "Ok"
        assert rows(q(a, "show application_name", t)) == [["left_behind"]]
        a.sock.shutdown(socket.SHUT_RDWR)
        a.sock.close()
        b = w.conn
        r = ex(b, "update tx_items set v = 2 where v = 1", timeout_ms=3000)
        assert r["status"] == "Ok" and decode(r)["rows_affected"] == 1, r
        assert rows(q(b, "show application_name")) != [["left_behind"]]
        assert vals(b) == [2]
        assert ok(b.call("stats"))["worker"]["transactions"] == 0


def test_a_vanished_sqlite_client_releases_the_write_lock(tmp_path):
    dsn = f"sqlite://{tmp_path / 'gone.db'}"
    with socket_worker(dsn, "--pool", "default:sqlite_busy_timeout_ms=200") as w:
        fresh_table(w)
        a = w.connect()
        t = begin(a)
        assert ex(a, "insert into tx_items values (1)", t)["status"] == "Ok"
        blocked = ex(w.conn, "insert into tx_items values (2)")
        assert blocked["status"] == "DbError" and blocked["sqlstate"] == "55P03"
        a.sock.close()
        deadline = time.monotonic() + 3
        while True:
            r = ex(w.conn, "insert into tx_items values (2)")
            if r["status"] == "Ok" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r["status"] == "Ok", r
        assert vals(w.conn) == [2]


def test_shutdown_with_an_open_transaction_rolls_it_back(dsn):
    w = socket_worker(dsn).start()
    fresh_table(w)
    t = begin(w.conn)
    assert ex(w.conn, "insert into tx_items values (5)", t)["status"] == "Ok"
    assert w.stop() == 0
    with socket_worker(dsn) as w2:
        assert vals(w2.conn) == []


def test_a_transaction_whose_connection_dies_ends_cleanly():
    """The server ends the transaction's backend: its next statement fails,
    tx_rollback is Ok and ends it, and the pool serves on."""
    if not DSN:
        pytest.skip("MOLT_TEST_DSN is not set")
    psycopg = pytest.importorskip("psycopg")
    with socket_worker(DSN, "--pool", "default:max_conns=2") as w:
        fresh_table(w)
        c = w.conn
        t = begin(c)
        assert ex(c, "insert into tx_items values (1)", t)["status"] == "Ok"
        pid = rows(q(c, "select pg_backend_pid()", t))[0][0]
        with psycopg.connect(DSN, autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)
        r = q(c, "select 1", t)
        assert r["status"] in ("DbError", "InternalError"), r
        end = rollback(c, t)
        assert end["status"] == "Ok" and decode(end)["ended"] is True, end
        assert vals(c) == []
        assert ok(c.call("stats"))["worker"]["transactions"] == 0
