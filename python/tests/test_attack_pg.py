"""A hostile db_query client against the real worker on a real PostgreSQL.

Each attack is followed by what its victim reads (or what the server holds)
afterwards: forged cached statements, session state that outlived the
worker's ROLLBACK (advisory locks, LISTEN, SET, prepared statements),
privileged roles, a password in argv, parameter values in the worker's log.
MOLT_TEST_DSN is a superuser (the privilege tests use it without the flag);
MOLT_TEST_DSN_APP (scripts/with_pg.sh) is a role with pg_read_all_data and
pg_write_all_data only."""
import json
import os
import re
import time

import pytest

from worker_client import Worker, decode, WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
APP_DSN = os.environ.get("MOLT_TEST_DSN_APP")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)"),
]
MODES = ["cached", "unnamed", "simple"]
VICTIM_SQL = "select 'REAL'::text as v"


@pytest.fixture(scope="module")
def pg():
    psycopg = pytest.importorskip("psycopg")
    con = psycopg.connect(DSN, autocommit=True)
    con.execute("drop table if exists atk_items")
    con.execute("create table atk_items(id int primary key, name text)")
    con.execute("insert into atk_items values (1, 'a'), (2, 'b')")
    yield con
    con.execute("drop table if exists atk_items")
    con.close()


def one_conn_worker(mode="cached", *extra, dsn=None):
    return Worker({"default": dsn or DSN}, "--allow-write", "default",
                  "--pool", "default:max_conns=1",
                  "--pool", f"default:statement_mode={mode}", *extra)


def fnv1a(sql):
    """The statement name the pool used to give sql (no parameters)."""
    h = 0xcbf29ce484222325
    for b in sql.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"molt_{h:016x}"


def rows(resp):
    return decode(resp)["rows"]


def refused(resp, sqlstate="25006"):
    return resp["status"] == "DbError" and resp.get("sqlstate") == sqlstate


def backend_pid(c):
    return rows(c.query("select pg_backend_pid() as p"))[0][0]


# ---- cached statements cannot be forged ------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_forged_prepared_statement_never_reaches_the_victim(pg, mode):
    with one_conn_worker(mode) as w:
        c = w.conn
        assert rows(c.query(VICTIM_SQL)) == [["REAL"]]  # now cached (cached mode)
        old = fnv1a(VICTIM_SQL)
        attacks = [f"deallocate {old}", "deallocate all", "DEALLOCATE ALL",
                   f"/* x */ -- y\n  DeAlLoCaTe {old}", "discard all",
                   f"prepare {old} as select 'FORGED'::text as v",
                   f"PREPARE {old}(int) AS SELECT 'FORGED'::text AS v",
                   f"execute {old}",
                   f"deallocate {old}; prepare {old} as select 'FORGED'::text as v",
                   "select name, statement from pg_prepared_statements",
                   "select * from \"pg_prepared_statements\"",
                   "select query_to_xml('deallocate all', true, true, '')",
                   "select table_to_xml('pg_prepared_statements', true, false, '')",
                   "select schema_to_xml('pg_catalog', true, false, '')",
                   "select ts_rewrite('a'::tsquery, 'select ''a''::tsquery, quote_literal(name)::tsquery"
                   " from pg_prepared_' || 'statements')"]
        for sql in attacks:
            r = c.query(sql)
            assert refused(r) or refused(r, "42601"), (sql, r)
        assert rows(c.query(VICTIM_SQL)) == [["REAL"]]
        # db_exec (a writer) sees the statement names: random per connection
        names = [n for (n,) in rows(c.query("select name from pg_prepared_statements",
                                            entry="db_exec", allow_write=True))]
        for n in names:
            assert re.fullmatch(r"molt_[0-9a-f]{32}", n), n
        assert old not in names


def test_a_writers_do_block_leaves_nothing_on_the_connection(pg):
    """A DO block runs the client's own dynamic SQL: it may replace the
    connection's prepared statements or change its settings, so its
    connection is closed after it, as for PREPARE or SET."""
    with one_conn_worker("cached") as w:
        c = w.conn
        assert rows(c.query(VICTIM_SQL)) == [["REAL"]]  # now cached
        r = c.query("""do $$ declare v text; begin
              select name into v from pg_prepared_statements
               where statement = 'select ''REAL''::text as v';
              execute format('deallocate %I', v);
              execute format('prepare %I as select ''FORGED''::text as v', v);
              execute 'set work_mem = ''77MB''';
            end $$""", entry="db_exec", allow_write=True)
        assert r["status"] == "Ok", r
        assert rows(c.query(VICTIM_SQL)) == [["REAL"]]
        assert rows(c.query("select current_setting('work_mem') as m")) != [["77MB"]]


def test_pipelined_attacker_and_victim_on_one_connection(pg):
    """Attacker and victim requests interleaved on one pipelined connection:
    every victim reads its own value."""
    with Worker({"default": DSN}, "--pool", "default:pipeline_depth=8",
                "--pool", "default:max_conns=1") as w:
        c = w.conn
        sql = "select $1::int * 10 as v"
        old = fnv1a(sql)
        ids = {}
        for i in range(40):
            if i % 2:
                ids[c.request("db_query", {"sql": sql, "params": {"mode": "positional",
                                                                  "values": [i]}})] = i
            else:
                c.request("db_query", {"sql": [f"deallocate {old}", "deallocate all",
                                               f"prepare {old}(int) as select -1 as v",
                                               "select pg_advisory_lock(7)"][i // 2 % 4]})
        seen = 0
        while seen < 40:
            r = c.recv()
            seen += 1
            if r["request_id"] in ids:
                assert rows(r) == [[ids[r["request_id"]] * 10]], r
            elif r["status"] != "Ok":
                assert refused(r), r


# ---- session state does not reach the next request -------------------------

def advisory_held(pg, key):
    return pg.execute("select count(*) from pg_locks where locktype = 'advisory' "
                      "and objid = %s", (key,)).fetchone()[0]


def wait_until(cond, within=3.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@pytest.mark.parametrize("mode", MODES)
def test_session_advisory_lock_does_not_survive(pg, mode):
    with one_conn_worker(mode) as w:
        c = w.conn
        pid = backend_pid(c)
        for sql in ["select pg_advisory_lock(4242)", "SELECT PG_CATALOG.PG_ADVISORY_LOCK(4242)",
                    "select \"pg_advisory_lock\"(4242)"]:
            assert c.query(sql)["status"] == "Ok"
            # its connection was closed: nobody holds the lock afterwards
            assert wait_until(lambda: advisory_held(pg, 4242) == 0), sql
        # the next request runs on a fresh connection
        assert backend_pid(c) != pid
        assert advisory_held(pg, 4242) == 0
        # a transaction-level lock keeps the connection
        pid = backend_pid(c)
        assert c.query("select pg_advisory_xact_lock(4243)")["status"] == "Ok"
        assert backend_pid(c) == pid


def test_db_exec_session_state_is_not_inherited(pg):
    with one_conn_worker() as w:
        c = w.conn

        def ex(sql):
            r = c.query(sql, entry="db_exec", allow_write=True)
            assert r["status"] == "Ok", (sql, r)

        pid = backend_pid(c)
        ex("set search_path = pg_catalog")
        assert rows(c.query("show search_path")) == [['"$user", public']]
        ex("listen atk_channel")
        assert rows(c.query("select count(*) from pg_listening_channels()")) == [[0]]
        ex("prepare atk_p as select 'FORGED'::text as v")
        assert refused(c.query("execute atk_p"))
        ex("create temp table atk_tmp(a int)")
        assert rows(c.query("select count(*) from pg_class where relname = 'atk_tmp'")) == [[0]]
        ex("select pg_advisory_lock(4244)")
        assert wait_until(lambda: advisory_held(pg, 4244) == 0)
        assert backend_pid(c) != pid
        # inside a db_exec transaction (statements): closed once it ends
        pid = backend_pid(c)
        r = c.call("db_exec", {"allow_write": True, "statements": [
            {"sql": "update atk_items set name = name where id = 1"},
            {"sql": "select pg_advisory_lock(4245)"}]})
        assert r["status"] == "Ok", r
        assert wait_until(lambda: advisory_held(pg, 4245) == 0)
        assert backend_pid(c) != pid
        # an ordinary write keeps its connection
        pid = backend_pid(c)
        ex("update atk_items set name = name where id = 1")
        ex("set local search_path = pg_catalog")
        assert backend_pid(c) == pid


def test_a_table_made_in_pg_temp_does_not_shadow_the_next_clients(pg):
    """pg_temp names the session's temporary schema, TEMP or not: what a
    writer makes there must not reach the next client of the connection."""
    with one_conn_worker() as w:
        attacker = victim = w.conn  # one pooled connection between them
        for sql in ("create table pg_temp.atk_items as select 3 as id, 'FORGED' as name",
                    'create view "pg_temp".atk_items as select 3 as id, \'FORGED\' as name'):
            r = attacker.query(sql, entry="db_exec", allow_write=True)
            assert r["status"] == "Ok", r
            assert rows(victim.query("select name from atk_items order by id")) == [["a"], ["b"]]


# ---- the statement classifier in front of the server -----------------------

@pytest.mark.parametrize("mode", MODES)
def test_db_query_refuses_all_but_one_read(pg, mode, tmp_path):
    target = tmp_path / "pwned"
    with Worker({"default": DSN}, "--pool", f"default:statement_mode={mode}") as w:
        c = w.conn
        for sql in ["listen x", "LISTEN x", "notify x", "set search_path = x",
                    "reset all", "load 'plpgsql'", "checkpoint", "vacuum atk_items",
                    "lock atk_items", "do $$ begin end $$", "begin", "commit",
                    "savepoint s", f"copy (select 1) to program 'touch {target}'",
                    f"COPY atk_items TO '{target}'",
                    "with d as (delete from atk_items returning 1) select * from d",
                    "select * into atk_copy from atk_items",
                    "select * from atk_items for update", "select * from atk_items FOR SHARE",
                    "explain analyze delete from atk_items",
                    "select dblink_exec('dbname=molt_test', 'delete from atk_items')"]:
            r = c.query(sql)
            assert refused(r), (sql, r)
            assert "refused" in r["error"] or "locks rows" in r["error"], r
        for sql in ["select 1; delete from atk_items", "select 1;select 2"]:
            assert refused(c.query(sql), "42601")
        for sql in [";", " ; ; ", "-- only a comment", "/* a /* nested */ comment */"]:
            r = c.query(sql)
            assert r["status"] == "InvalidInput" and "no statement" in r["error"], (sql, r)
        for sql, want in [("SeLeCt 'a;b' as v", "a;b"), ("select $$;$$ as v", ";"),
                          ("/* c */ -- d\n (select 'x' as v)", "x"),
                          ("with x as (select 'w' as v) select v from x", "w"),
                          ("values ('vv')", "vv")]:
            assert rows(c.query(sql)) == [[want]], sql
        assert rows(c.query("show search_path")) == [['"$user", public']]
        assert c.query("explain select 1")["status"] == "Ok"
    assert not target.exists()
    assert pg.execute("select count(*) from atk_items").fetchone()[0] == 2
    assert pg.execute("select to_regclass('atk_copy')").fetchone()[0] is None


def test_simple_mode_with_parameters_is_invalid_input(pg):
    with Worker({"default": DSN}, "--pool", "default:statement_mode=simple") as w:
        r = w.conn.query("select $1::int as v", {"mode": "positional", "values": [1]})
        assert r["status"] == "InvalidInput" and "simple" in r["error"], r


# ---- privileged roles --------------------------------------------------------

def test_superuser_role_is_refused_without_the_flag(pg, tmp_path):
    target = tmp_path / "pwned"
    with Worker({"default": DSN}, "--allow-write", "default", privileged=False) as w:
        c = w.conn
        for sql, entry in [("select 1", "db_query"),
                           (f"copy (select 1) to program 'touch {target}'", "db_exec"),
                           ("select pg_reload_conf()", "db_query")]:
            kw = {"allow_write": True} if entry == "db_exec" else {}
            r = c.query(sql, entry=entry, **kw)
            assert refused(r, "42501"), r
            assert "superuser" in r["error"] and "pg_read_all_data" in r["error"]
            assert "allow_privileged_role" in r["error"]
    assert not target.exists()


@pytest.mark.skipif(not APP_DSN, reason="MOLT_TEST_DSN_APP is not set (scripts/with_pg.sh)")
def test_least_privilege_role_is_served(pg):
    with Worker({"default": APP_DSN}, "--allow-write", "default", privileged=False) as w:
        c = w.conn
        assert rows(c.query("select name from atk_items where id = 1")) == [["a"]]
        r = c.query("update atk_items set name = 'a' where id = 1", entry="db_exec",
                    allow_write=True)
        assert r["status"] == "Ok", r
        # what the role may not do, the server refuses
        r = c.query("select pg_read_file('/etc/hostname')", entry="db_exec", allow_write=True)
        assert r["status"] == "DbError" and r["sqlstate"] == "42501", r
        r = c.query("copy (select 1) to program 'true'", entry="db_exec", allow_write=True)
        assert r["status"] == "DbError" and r["sqlstate"] == "42501", r


# ---- passwords and parameter values ------------------------------------------

def test_password_in_db_flag_is_hidden_from_ps(pg):
    md5 = os.environ.get("MOLT_TEST_DSN_MD5")
    if not md5:
        pytest.skip("MOLT_TEST_DSN_MD5 is not set")
    password = re.match(r"postgresql://[^:]+:([^@]+)@", md5).group(1)
    kv = "host=127.0.0.1 port={} user=molt dbname=molt_test password='kv pw'".format(
        re.search(r":(\d+)/", md5).group(1))
    with Worker({"default": md5, "kv": kv}) as w:
        # answered: the flags are parsed
        assert rows(w.conn.query("select current_user::text as u")) == [["molt_md5"]]
        cmdline = open(f"/proc/{w.proc.pid}/cmdline", "rb").read().decode()
        assert password not in cmdline and "kv pw" not in cmdline
        assert "molt_md5:" in cmdline and "@127.0.0.1" in cmdline
    assert "warning" in w.stderr and "--config" in w.stderr


def test_worker_log_never_holds_parameter_values(pg):
    with Worker({"default": DSN}, "--log-requests") as w:
        c = w.conn
        r = c.query("select $1::int as v", {"mode": "positional", "values": ["S3CRET"]})
        # the server's message quotes the value; the contract says error may
        assert r["status"] == "DbError" and "S3CRET" in r["error"]
        r = c.query("select :tok::text as v", {"mode": "named",
                                                "values": [{"name": "tok", "value": "T0KEN"}]})
        assert rows(r) == [["T0KEN"]]
    lines = [json.loads(x) for x in w.stderr.splitlines() if x.startswith("{")]
    assert len([x for x in lines if "request_id" in x]) == 2
    assert "S3CRET" not in w.stderr and "T0KEN" not in w.stderr


def test_metrics_split_queue_and_execution(pg):
    with Worker({"default": DSN}) as w:
        r = w.conn.query("select pg_sleep(0.6)")
        m = r["metrics"]
        assert m["exec_us"] >= 550000, m
        assert m["queue_us"] < 100000, m
