"""A hostile client of the transaction entries, against the real worker on a
real PostgreSQL and a real SQLite file. A client without db.write tries
every way to write inside a transaction it opened; any client tries to
control transactions with SQL, to reach another session's transaction,
to use one before it began, and to nest without bound. After each attack
the test reads what the table (or the server) holds."""
import os
import sqlite3
import subprocess
import time

import pytest

from worker_client import Worker, decode, WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = pytest.mark.skipif(not os.path.exists(WORKER_BIN),
                                reason=f"{WORKER_BIN} is not built")
needs_pg = pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set "
                              "(run under scripts/with_pg.sh)")


def begin(conn, **kw):
    r = conn.call("tx_begin", kw)
    assert r["status"] == "Ok", r
    return decode(r)


def rows(resp):
    return decode(resp)["rows"]


@pytest.fixture(scope="module")
def pg():
    if not DSN:
        pytest.skip("MOLT_TEST_DSN is not set")
    psycopg = pytest.importorskip("psycopg")
    con = psycopg.connect(DSN, autocommit=True)
    con.execute("drop table if exists atk_tx cascade")
    con.execute("drop sequence if exists atk_tx_seq")
    con.execute("create table atk_tx(v int primary key)")
    con.execute("insert into atk_tx values (1)")
    con.execute("create sequence atk_tx_seq")
    con.execute("create or replace function atk_tx_write() returns int "
                "language sql as 'insert into atk_tx values (666) returning 1'")
    # a write that READ ONLY lets through, out of the classifier's sight
    con.execute("create or replace function atk_tx_lo(bytea) returns oid "
                "language sql as 'select lo_from_bytea(0, $1)'")
    yield con
    con.execute("drop table if exists atk_tx cascade")
    con.execute("drop sequence if exists atk_tx_seq")
    con.execute("drop function if exists atk_tx_write()")
    con.execute("drop function if exists atk_tx_lo(bytea)")
    con.close()


PG_READ_ONLY_ATTACKS = [
    ("insert into atk_tx values (2)", "25006"),
    ("SET TRANSACTION READ WRITE", "25006"),
    ("set transaction_read_only = off", "25006"),
    ("select set_config('transaction_read_only', 'off', false)", "25006"),
    ("select set_config('transaction_read_only', 'off', true)", "25006"),
    ("select pg_advisory_lock(4242)", "25006"),
    ("commit", "25006"),
    ("/* x */ CoMmIt; begin; insert into atk_tx values (3)", "42601"),
    ("end", "25006"),
    ("abort", "25006"),
    ("start transaction read write", "25006"),
    ("savepoint s", "25006"),
    ("release savepoint molt_sp_1", "25006"),
    ("prepare transaction 'atk'", "25006"),
    ("with w as (insert into atk_tx values (4) returning v) select * from w", "25006"),
    ("select atk_tx_write()", "25006"),      # the server's READ ONLY
    ("select nextval('atk_tx_seq')", "25006"),
    ("do $$ begin insert into atk_tx values (5); end $$", "25006"),
    ("select * from dblink('dbname=postgres', 'insert ...') as t(a int)", "25006"),
]


@needs_pg
@pytest.mark.parametrize("sql,sqlstate", PG_READ_ONLY_ATTACKS)
def test_pg_read_only_client_cannot_write_in_a_transaction(pg, sql, sqlstate):
    with Worker({"default": DSN}, "--pool", "default:max_conns=1") as w:
        c = w.conn
        # asking for a writable transaction gets a read-only one
        b = begin(c, read_only=False, isolation="serializable")
        assert b["read_only"] is True
        t = b["tx_id"]
        assert rows(c.query("show transaction_read_only", tx_id=t)) == [["on"]]
        r = c.query(sql, tx_id=t)
        assert r["status"] == "DbError" and r["sqlstate"] == sqlstate, r
        assert r["status"] != "Ok"
        # db_exec is refused however it is asked
        e = c.call("db_exec", {"sql": "insert into atk_tx values (9)",
                               "allow_write": True, "tx_id": t})
        assert e["status"] == "InvalidInput", e
        end = c.call("tx_commit", {"tx_id": t})
        assert end["status"] in ("Ok", "DbError"), end
        # the same pooled connection, next: still nothing written, no state
        assert rows(c.query("show transaction_read_only")) == [["on"]]
    assert [v for (v,) in pg.execute("select v from atk_tx order by v")] == [1]
    assert pg.execute("select last_value, is_called from atk_tx_seq").fetchone() == (1, False)
    assert pg.execute("select count(*) from pg_locks where locktype = 'advisory'").fetchone() == (0,)
    assert pg.execute("select count(*) from pg_prepared_xacts").fetchone() == (0,)


@needs_pg
def test_pg_read_only_transaction_commits_nothing(pg):
    """PostgreSQL lets a READ ONLY transaction create a large object; the
    client's tx_commit of a read-only transaction must not keep it."""
    with Worker({"default": DSN}, "--pool", "default:max_conns=1") as w:
        c = w.conn
        t = begin(c)["tx_id"]
        r = c.query("select atk_tx_lo('forged')", tx_id=t)
        assert r["status"] == "Ok", r
        oid = rows(r)[0][0]
        assert rows(c.query("select count(*) from pg_largeobject_metadata where oid = $1",
                            params={"mode": "positional", "values": [oid]},
                            tx_id=t)) == [[1]]
        end = c.call("tx_commit", {"tx_id": t})
        assert end["status"] == "Ok" and decode(end)["ended"] is True, end
        # a failed one is answered as the server answers its COMMIT
        t = begin(c)["tx_id"]
        assert c.query("select 1/0", tx_id=t)["status"] == "DbError"
        end = c.call("tx_commit", {"tx_id": t})
        assert end["status"] == "DbError" and end["sqlstate"] == "25P02", end
        assert rows(c.query("select 1")) == [[1]]
    assert pg.execute("select count(*) from pg_largeobject_metadata where oid = %s",
                      (oid,)).fetchone() == (0,)


def test_one_session_leaves_the_last_transaction_slot(tmp_path):
    """Open transactions may hold half an alias's connections; a session that
    holds one of them cannot take the last, which stays for another client."""
    db = tmp_path / "s.db"
    sqlite3.connect(db).close()
    with Worker({"ro": f"sqlite://{db}"}, "--pool", "ro:sqlite_conns=4", stdio=False) as w:
        attacker, victim = w.conn, w.connect()
        begin(attacker, db_alias="ro")
        r = attacker.call("tx_begin", {"db_alias": "ro"})
        assert r["status"] == "Busy" and "one transaction slot left" in r["error"], r
        begin(victim, db_alias="ro")


TX_CONTROL = ["commit", "COMMIT AND CHAIN", "end", "abort", "rollback", "begin",
              "start transaction", "savepoint s", "release s", "rollback to s",
              "prepare transaction 'atk'", "commit prepared 'atk'",
              "  /* c */ -- x\n CoMmIt", "insert into atk_tx values (7); commit"]


@needs_pg
@pytest.mark.parametrize("sql", TX_CONTROL)
def test_pg_transaction_control_in_sql_is_refused_in_db_exec(pg, sql):
    with Worker({"default": DSN}, "--allow-write", "default",
                "--pool", "default:max_conns=1", "--pool", "default:statement_mode=simple") as w:
        c = w.conn
        # in a statements list, a COMMIT would commit the list's first half
        r = c.call("db_exec", {"allow_write": True, "statements": [
            {"sql": "insert into atk_tx values (7)"}, {"sql": sql},
            {"sql": "insert into atk_tx values (1)"}]})
        assert r["status"] == "DbError" and r["sqlstate"] == "42501", r
        assert "tx_begin" in r["error"]
        t = begin(c)["tx_id"]
        r = c.call("db_exec", {"allow_write": True, "sql": sql, "tx_id": t})
        assert r["status"] == "DbError" and r["sqlstate"] == "42501", r
        assert c.call("tx_rollback", {"tx_id": t})["status"] == "Ok"
    assert [v for (v,) in pg.execute("select v from atk_tx order by v")] == [1]
    assert pg.execute("select count(*) from pg_prepared_xacts").fetchone() == (0,)


@needs_pg
def test_pg_session_state_in_a_writable_transaction_closes_its_connection(pg):
    with Worker({"default": DSN}, "--allow-write", "default",
                "--pool", "default:max_conns=1") as w:
        c = w.conn
        pid = rows(c.query("select pg_backend_pid()"))[0][0]
        t = begin(c)["tx_id"]
        assert c.call("db_exec", {"allow_write": True, "tx_id": t, "sql":
                                  "select pg_advisory_lock(4243)"})["status"] == "Ok"
        assert c.call("tx_commit", {"tx_id": t})["status"] == "Ok"
        assert rows(c.query("select pg_backend_pid()"))[0][0] != pid
    assert pg.execute("select count(*) from pg_locks where locktype = 'advisory'").fetchone() == (0,)


@pytest.fixture
def sqlite_file(tmp_path):
    path = tmp_path / "atk.db"
    con = sqlite3.connect(path)
    con.executescript("create table atk_tx(v integer primary key); insert into atk_tx values (1);")
    con.commit()
    con.close()
    return path


SQLITE_READ_ONLY_ATTACKS = [
    "insert into atk_tx values (2)",
    "PRAGMA query_only=0",
    "PRAGMA query_only=OFF",
    "commit",
    "end",
    "rollback",
    "begin immediate",
    "savepoint s",
    "release molt_sp_1",
    "attach database ':memory:' as x",
    "create temp table t(x)",
    "with w as (select 1) insert into atk_tx select 3 from w",
]


@pytest.mark.parametrize("sql", SQLITE_READ_ONLY_ATTACKS)
def test_sqlite_read_only_client_cannot_write_in_a_transaction(sqlite_file, sql):
    dsn = f"sqlite://{sqlite_file}"
    with Worker({"default": dsn}, "--pool", "default:sqlite_conns=1") as w:
        c = w.conn
        b = begin(c, read_only=False)
        assert b["read_only"] is True
        t = b["tx_id"]
        r = c.query(sql, tx_id=t)
        assert r["status"] == "DbError" and r["sqlstate"] == "25006", r
        e = c.call("db_exec", {"sql": "insert into atk_tx values (9)",
                               "allow_write": True, "tx_id": t})
        assert e["status"] == "InvalidInput", e
        assert rows(c.query("select count(*) from atk_tx", tx_id=t)) == [[1]]
        assert c.call("tx_commit", {"tx_id": t})["status"] == "Ok"
    con = sqlite3.connect(sqlite_file)
    assert con.execute("select v from atk_tx").fetchall() == [(1,)]
    con.close()


@pytest.mark.parametrize("sql", ["commit", "savepoint s", "release molt_sp_1",
                                 "rollback to molt_sp_1", "PRAGMA query_only=1",
                                 "begin"])
def test_sqlite_writer_cannot_touch_the_workers_scopes(sqlite_file, sql):
    dsn = f"sqlite://{sqlite_file}"
    with Worker({"default": dsn}, "--allow-write", "default",
                "--pool", "default:sqlite_conns=1") as w:
        c = w.conn
        t = begin(c)["tx_id"]
        assert c.call("db_exec", {"allow_write": True, "tx_id": t,
                                  "sql": "insert into atk_tx values (2)"})["status"] == "Ok"
        assert begin(c, tx_id=t)["depth"] == 1
        r = c.call("db_exec", {"allow_write": True, "tx_id": t, "sql": sql})
        assert r["status"] == "DbError" and r["sqlstate"] == "42501", r
        assert c.call("tx_rollback", {"tx_id": t})["status"] == "Ok"   # the savepoint
        assert c.call("tx_rollback", {"tx_id": t})["status"] == "Ok"   # the transaction
        assert rows(c.query("select v from atk_tx")) == [[1]]


def test_another_sessions_transaction_is_out_of_reach(tmp_path):
    dsn = f"sqlite://{tmp_path / 'two.db'}"
    with Worker({"default": dsn}, "--allow-write", "default", stdio=False) as w:
        owner, thief = w.conn, w.connect()
        assert owner.call("db_exec", {"allow_write": True, "sql":
                                      "create table s(v int)"})["status"] == "Ok"
        t = begin(owner)["tx_id"]
        assert owner.call("db_exec", {"allow_write": True, "tx_id": t, "sql":
                                      "insert into s values (1)"})["status"] == "Ok"
        for entry, payload in [
                ("db_query", {"sql": "select * from s", "tx_id": t}),
                ("db_exec", {"sql": "insert into s values (2)", "allow_write": True, "tx_id": t}),
                ("tx_begin", {"tx_id": t}), ("tx_commit", {"tx_id": t}),
                ("tx_rollback", {"tx_id": t})]:
            r = thief.call(entry, payload)
            assert r["status"] == "InvalidInput" and "unknown tx_id" in r["error"], r
        assert owner.call("tx_commit", {"tx_id": t})["status"] == "Ok"
        assert rows(owner.query("select v from s")) == [[1]]


@needs_pg
def test_a_transaction_cannot_be_used_before_it_began(pg):
    with Worker({"default": DSN}, "--allow-write", "default",
                "--pool", "default:max_conns=1", "--tx-alias-share-pct", "100",
                stdio=False) as w:
        hog, c = w.connect(), w.conn
        first = begin(c)["tx_id"]
        assert c.call("tx_rollback", {"tx_id": first})["status"] == "Ok"
        hog.request("db_query", {"sql": "select pg_sleep(0.5)"})
        time.sleep(0.1)  # the hog's query holds the one connection
        rid = c.request("tx_begin", {})
        # the next id is easy to guess; it is not usable while BEGIN waits
        r = c.call("db_query", {"sql": "select 1", "tx_id": first + 1})
        assert r["status"] == "InvalidInput" and "not begun yet" in r["error"], r
        b = c.recv(5)
        assert b["request_id"] == rid and decode(b)["tx_id"] == first + 1
        assert hog.recv(5)["status"] == "Ok"
        assert c.call("tx_rollback", {"tx_id": first + 1})["status"] == "Ok"


def test_malformed_and_unbounded_requests(tmp_path):
    dsn = f"sqlite://{tmp_path / 'm.db'}"
    with Worker({"default": dsn, "other": dsn}, "--allow-write", "default") as w:
        c = w.conn
        for entry, payload, text in [
                ("tx_begin", {"isolation": "chaos"}, "isolation must be"),
                ("tx_begin", {"db_alias": "nope"}, "unknown db_alias"),
                ("tx_begin", {"read_only": 1}, "read_only must be a bool"),
                ("tx_commit", {}, "tx_id is required"),
                ("tx_commit", {"tx_id": "1"}, "tx_id must be an unsigned integer"),
                ("tx_rollback", {"tx_id": -1}, "tx_id must be an unsigned integer"),
                ("db_query", {"sql": "select 1", "tx_id": 2 ** 64 - 1}, "unknown tx_id")]:
            r = c.call(entry, payload)
            assert r["status"] == "InvalidInput" and text in r["error"], (entry, r)
        t = begin(c)["tx_id"]
        r = c.call("tx_begin", {"tx_id": t, "read_only": True})
        assert r["status"] == "InvalidInput" and "only tx_id" in r["error"]
        r = c.query("select 1", tx_id=t, db_alias="other")
        assert r["status"] == "InvalidInput" and "is not the alias" in r["error"]
        for depth in range(1, 65):
            assert begin(c, tx_id=t)["depth"] == depth
        r = c.call("tx_begin", {"tx_id": t})
        assert r["status"] == "InvalidInput" and "64" in r["error"]
        assert c.call("tx_rollback", {"tx_id": t})["status"] == "Ok"
        r = c.call("tx_rollback", {"tx_id": t})  # depth 63 -> 62: still open
        assert decode(r)["depth"] == 62
        assert decode(c.call("stats"))["worker"]["transactions"] == 1


def test_an_old_tx_id_names_nothing_after_a_reconnect_or_restart(tmp_path):
    """A client whose connection (or worker) was replaced reuses the id of
    the transaction it had: it must not land in a transaction another
    client began meanwhile."""
    dsn = f"sqlite://{tmp_path / 'r.db'}"
    with Worker({"default": dsn}, "--allow-write", "default", stdio=False) as w:
        old = w.connect()
        assert old.call("db_exec", {"allow_write": True, "sql":
                                    "create table r(v int)"})["status"] == "Ok"
        stale = begin(old)["tx_id"]
        old.sock.close()            # the worker rolls it back
        time.sleep(0.1)
        other = w.conn
        fresh = begin(other)["tx_id"]
        assert fresh != stale
        reconnected = w.connect()
        for t in (stale, fresh):    # neither is this connection's
            r = reconnected.call("db_exec", {"allow_write": True, "tx_id": t,
                                             "sql": "insert into r values (1)"})
            assert r["status"] == "InvalidInput" and "unknown tx_id" in r["error"], r
        assert other.call("tx_commit", {"tx_id": fresh})["status"] == "Ok"
        assert rows(other.query("select count(*) from r")) == [[0]]
    with Worker({"default": dsn}, "--allow-write", "default") as w2:
        # a new worker process starts its ids elsewhere
        assert begin(w2.conn)["tx_id"] not in (stale, stale + 1, fresh, fresh + 1)


def test_tx_alias_share_pct_above_100_is_refused_at_start(tmp_path):
    r = subprocess.run([WORKER_BIN, "--stdio", "--db", f"default=sqlite://{tmp_path / 'p.db'}",
                        "--tx-alias-share-pct", "101"], capture_output=True, timeout=30)
    assert r.returncode == 2
    assert b"tx_alias_share_pct (101) is above 100" in r.stderr


def answers(conn, *ids):
    """The final frames of the requests ids (others', e.g. a cancel's, read
    and dropped)."""
    got = {}
    while not all(i in got for i in ids):
        r = conn.recv(10)
        got[r["request_id"]] = r
    return got


@needs_pg
def test_requests_sent_right_after_a_cancel_in_a_transaction(pg):
    """A client is answered Cancelled at once and sends the transaction's
    next requests while the cancelled statement still ends on the server:
    the first of them waits for it (and then runs in the aborted
    transaction), any more are refused; nothing runs outside the
    transaction, and the ROLLBACK that follows is not refused."""
    with Worker({"default": DSN}, "--allow-write", "default",
                "--pool", "default:max_conns=1", stdio=False) as w:
        c = w.conn
        tx = begin(c, read_only=False)["tx_id"]
        assert c.call("db_exec", {"sql": "insert into atk_tx values (10)",
                                  "tx_id": tx, "allow_write": True})["status"] == "Ok"
        sleep_id = c.request("db_query", {"sql": "select pg_sleep(5)", "tx_id": tx})
        time.sleep(0.2)  # it runs on the server
        t0 = time.monotonic()
        c.request("cancel", {"request_id": sleep_id})
        first = c.request("db_exec", {"sql": "insert into atk_tx values (11)", "tx_id": tx,
                                       "allow_write": True})
        second = c.request("db_exec", {"sql": "insert into atk_tx values (12)", "tx_id": tx,
                                        "allow_write": True})
        got = answers(c, sleep_id, first, second)
        assert time.monotonic() - t0 < 3
        assert got[sleep_id]["status"] == "Cancelled", got[sleep_id]
        assert got[second]["status"] == "InvalidInput", got[second]
        assert "busy" in got[second]["error"], got[second]
        # the first waited for the cancelled statement: the transaction is aborted
        assert got[first]["status"] == "DbError", got[first]
        assert got[first].get("sqlstate") == "25P02" or "25P02" in str(got[first]), got[first]
        assert c.call("tx_rollback", {"tx_id": tx, "allow_write": True})["status"] == "Ok"
        # a rollback sent right after a cancel is not refused either
        tx = begin(c, read_only=False)["tx_id"]
        sleep_id = c.request("db_query", {"sql": "select pg_sleep(5)", "tx_id": tx})
        time.sleep(0.2)
        c.request("cancel", {"request_id": sleep_id})
        rb = c.request("tx_rollback", {"tx_id": tx})
        got = answers(c, sleep_id, rb)
        assert got[rb]["status"] == "Ok", got[rb]
        # the waiting request cancelled in turn: the next one takes its place
        tx = begin(c, read_only=False)["tx_id"]
        sleep_id = c.request("db_query", {"sql": "select pg_sleep(5)", "tx_id": tx})
        time.sleep(0.2)
        c.request("cancel", {"request_id": sleep_id})
        first = c.request("db_exec", {"sql": "insert into atk_tx values (13)", "tx_id": tx,
                                       "allow_write": True})
        c.request("cancel", {"request_id": first})
        rb = c.request("tx_rollback", {"tx_id": tx})
        got = answers(c, sleep_id, first, rb)
        assert got[first]["status"] == "Cancelled", got[first]
        assert got[rb]["status"] == "Ok", got[rb]
        assert rows(c.query("select count(*) from atk_tx where v >= 10")) == [[0]]
    assert pg.execute("select count(*) from atk_tx where v >= 10").fetchone() == (0,)


def test_sqlite_tx_begin_that_cannot_open_gives_its_connection_back(tmp_path):
    """tx_begin while the database file cannot be opened fails, and the
    connection it took goes back: once the file can be opened, the alias's
    two connections serve requests again (none is held for ever)."""
    d = tmp_path / "later"
    with Worker({"app": f"sqlite://{d / 's.db'}"}, "--allow-write", "app",
                "--pool", "app:sqlite_conns=2", "--tx-alias-share-pct", "100") as w:
        c = w.conn
        for _ in range(2):
            r = c.call("tx_begin", {"db_alias": "app"})
            assert r["status"] == "DbError" and r["sqlstate"] == "08006", r
        os.mkdir(d)
        r = c.query("select 1", db_alias="app", timeout_ms=3000)
        assert r["status"] == "Ok", r
        r = c.call("tx_begin", {"db_alias": "app"})
        assert r["status"] == "Ok", r
        stats = decode(c.call("stats"))["aliases"]["app"]
        assert stats["in_use"] == 1 and stats["waiters"] == 0, stats
