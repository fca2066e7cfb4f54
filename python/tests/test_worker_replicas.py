"""molt_worker with a replica-aware alias (--db-replica) against a real primary
and two streaming replicas (scripts/with_pg_replicas.sh): where reads and
writes run, read-your-writes, a read-only client, a hostile client pinning to
the primary, and failover: a replica stopped, a replica paused, the primary
restarted. Which server answered is inet_server_port() in the same query."""
import contextlib
import os
import subprocess
import threading
import time

import pytest

from worker_client import Worker, decode, WORKER_BIN

P = os.environ.get("MOLT_TEST_DSN_APP")
R1 = os.environ.get("MOLT_TEST_REPLICA1_DSN_APP")
R2 = os.environ.get("MOLT_TEST_REPLICA2_DSN_APP")
PORTS = {k: int(os.environ.get(v, "0")) for k, v in (
    ("primary", "MOLT_TEST_PGPORT"), ("r1", "MOLT_TEST_REPLICA1_PORT"),
    ("r2", "MOLT_TEST_REPLICA2_PORT"))}
PGCTL = os.environ.get("MOLT_TEST_PGCTL")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not R1, reason="MOLT_TEST_REPLICA1_DSN is not set "
                       "(run under scripts/with_pg.sh and scripts/with_pg_replicas.sh)"),
]

FAST = ["--pool", "main:replica_check_interval_ms=50", "--pool", "main:max_replica_lag_ms=400",
        "--pool", "main:max_conns=4"]


def replicated(*extra, write=True, primary=None, stdio=True):
    args = ["--db-replica", f"main={R1}", "--db-replica", f"main={R2}", *FAST]
    if write:
        args += ["--allow-write", "main"]
    return Worker({"main": primary or P}, *args, *extra, privileged=False, stdio=stdio)


def q(c, sql, params=None, **kw):
    if params is not None and not isinstance(params, dict):
        params = {"mode": "positional", "values": list(params)}
    return c.query(sql, params, db_alias="main", **kw)


def ex(c, sql, params=None):
    return q(c, sql, params, entry="db_exec", allow_write=True)


def servers(c):
    return {s["server"]: s for s in decode(c.call("stats"))["replicas"]["main"]}


def wait_for(pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def wait_healthy(c, names=("main@replica1", "main@replica2")):
    wait_for(lambda: all(servers(c)[n]["healthy"] for n in names), f"{names} never healthy")


def psql(dsn, sql):
    bin_dir = os.environ.get("MOLT_TEST_PGBIN", "/usr/bin")
    out = subprocess.run([f"{bin_dir}/psql", "-X", "-A", "-t", "-c", sql, dsn],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def replica_ctl(n, *args):
    env = dict(os.environ, MOLT_TEST_PGDATA=os.environ[f"MOLT_TEST_REPLICA{n}_PGDATA"],
               MOLT_TEST_PGLOG=os.environ[f"MOLT_TEST_REPLICA{n}_PGLOG"])
    subprocess.run([PGCTL, *args], check=True, capture_output=True, timeout=60, env=env)


@pytest.fixture
def table(pg):
    name = f"rep_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    pg.execute(f"create table {name} (id serial primary key, v int)")
    pg.execute(f"grant all on {name}, {name}_id_seq to molt_app")
    yield name
    pg.execute(f"drop table {name}")


def port_of(resp):
    return decode(resp)["rows"][0][-1]


def test_reads_on_replicas_writes_and_pinned_reads_on_the_primary(table):
    with replicated() as w:
        c = w.conn
        wait_healthy(c)
        read_ports = [port_of(q(c, "select inet_server_port()")) for _ in range(20)]
        assert set(read_ports) == {PORTS["r1"], PORTS["r2"]}, read_ports
        for _ in range(5):
            assert port_of(q(c, "select inet_server_port()", pin_primary=True)) == PORTS["primary"]
        r = ex(c, f"insert into {table} (v) select inet_server_port()")
        assert r["status"] == "Ok", r
        r = q(c, f"select v, inet_server_port() from {table}", pin_primary=True)
        assert decode(r)["rows"] == [[PORTS["primary"], PORTS["primary"]]]
        s = servers(c)
        assert s["main"]["role"] == "primary" and s["main@replica1"]["role"] == "replica"
        assert s["main@replica1"]["requests"] + s["main@replica2"]["requests"] == 20
        assert s["main"]["requests"] == 7
        assert s["main@replica1"]["lag_ms"] <= 400


def test_primary_serves_reads_spreads_them_over_all_three():
    with replicated("--pool", "main:primary_serves_reads=true", stdio=False) as w:
        c = w.conn
        wait_healthy(c)
        conns = [w.connect() for _ in range(6)]
        ports = []
        for _ in range(5):
            rids = [(k, k.request("db_query", {"db_alias": "main",
                                               "sql": "select pg_sleep(0.05), inet_server_port()"}))
                    for k in conns]
            for k, rid in rids:
                r = k.recv(timeout=10)
                assert r["request_id"] == rid
                ports.append(port_of(r))
        assert set(ports) == set(PORTS.values()), ports


def test_a_read_only_client_gets_no_write_anywhere(table, pg):
    pg.execute("create sequence if not exists rep_ro_seq")
    pg.execute("grant all on rep_ro_seq to molt_app")
    before = pg.execute("select last_value from rep_ro_seq").fetchone()[0]
    with replicated(write=False) as w:
        c = w.conn
        wait_healthy(c)
        r = ex(c, f"insert into {table} (v) values (1)")
        assert r["status"] == "InvalidInput" and "db.write" in r["error"], r
        for pin in (False, True):
            for sql in (f"insert into {table} (v) values (2)",
                        f"with x as (insert into {table} (v) values (3) returning 1) select * from x",
                        "select nextval('rep_ro_seq')",
                        f"select 1; delete from {table}"):
                r = q(c, sql, pin_primary=pin)
                assert r["status"] in ("DbError", "InvalidInput"), (sql, r)
            r = q(c, "select 1", allow_write=True, pin_primary=pin)
            assert r["status"] == "InvalidInput", r
    time.sleep(0.3)
    for dsn in (P, R1, R2):
        assert psql(dsn, f"select count(*) from {table}") == "0"
    assert pg.execute("select last_value from rep_ro_seq").fetchone()[0] == before


def test_a_session_reads_its_own_writes(table):
    """Each read right after the session's write sees it, wherever it runs;
    a later read of the same session may go to a replica seen past it."""
    with replicated("--pool", "main:read_your_writes_ms=10000") as w:
        c = w.conn
        wait_healthy(c)
        where = []
        for i in range(1, 151):
            assert ex(c, f"insert into {table} (v) values ($1)", [i])["status"] == "Ok"
            if i % 10 == 0:
                time.sleep(0.15)  # a check passes: replicas may cover the write
            rows = decode(q(c, f"select max(v), inet_server_port() from {table}"))["rows"]
            assert rows[0][0] == i, (i, rows)
            where.append(rows[0][1])
        assert PORTS["primary"] in where
        assert set(where) & {PORTS["r1"], PORTS["r2"]}, "no read went to a replica"


@contextlib.contextmanager
def replay_paused(*dsns):
    """WAL replay paused on these replicas (named by their molt_app DSNs)
    meanwhile, resumed after."""
    sus = [dsn.replace("molt_app", "molt") for dsn in dsns]
    for su in sus:
        psql(su, "select pg_wal_replay_pause()")
    try:
        yield
    finally:
        for su in sus:
            psql(su, "select pg_wal_replay_resume()")


def test_reads_of_a_writing_session_wait_for_no_paused_replica(table):
    with replicated("--pool", "main:max_replica_lag_ms=60000") as w:
        c = w.conn
        wait_healthy(c)
        with replay_paused(R1, R2):
            for i in range(1, 31):
                assert ex(c, f"insert into {table} (v) values ($1)", [i])["status"] == "Ok"
                time.sleep(0.02)
                rows = decode(q(c, f"select max(v), inet_server_port() from {table}"))["rows"]
                assert rows == [[i, PORTS["primary"]]], rows


def test_a_paused_replica_is_taken_out_and_put_back(table, pg):
    with replicated() as w:
        c = w.conn
        wait_healthy(c)
        with replay_paused(R1):
            stop = threading.Event()

            def keep_writing():
                while not stop.is_set():
                    pg.execute(f"insert into {table} (v) values (0)")
                    time.sleep(0.03)
            t = threading.Thread(target=keep_writing)
            t.start()
            try:
                wait_for(lambda: not servers(c)["main@replica1"]["healthy"],
                         "the paused replica stayed in", timeout=5)
                s = servers(c)["main@replica1"]
                assert s["lag_ms"] > 400 and "lag" in s["last_error"], s
                ports = [port_of(q(c, "select inet_server_port()")) for _ in range(20)]
                assert set(ports) == {PORTS["r2"]}, ports
            finally:
                stop.set()
                t.join()
        wait_healthy(c)
        ports = [port_of(q(c, "select inet_server_port()")) for _ in range(20)]
        assert PORTS["r1"] in ports


def test_a_replica_behind_before_the_worker_started_serves_nothing(table, pg):
    """Writes older than the worker's first look at the primary are
    invisible to the lag: a replica paused before the worker started must
    still not serve them stale."""
    with replay_paused(R1):
        pg.execute(f"insert into {table} (v) select g from generate_series(1, 100) g")
        with replicated() as w:
            c = w.conn
            wait_healthy(c, ("main@replica2",))
            deadline = time.monotonic() + 1.0  # past max_replica_lag_ms of 400
            while time.monotonic() < deadline:
                rows = decode(q(c, f"select count(*), inet_server_port() from {table}"))["rows"]
                assert rows[0][0] == 100 and rows[0][1] != PORTS["r1"], rows
            s = servers(c)["main@replica1"]
            assert not s["healthy"] and s["last_error"], s


def reader(w, results, stop, sql="select pg_sleep(0.01), inet_server_port()"):
    c = w.connect()
    while not stop.is_set():
        r = q(c, sql, timeout_ms=20000)
        results.append((r["status"], port_of(r) if r["status"] == "Ok" else r.get("error")))


@contextlib.contextmanager
def readers(w, n):
    """n client connections reading in a loop meanwhile; yields the list
    their (status, port or error) go to."""
    results, stop = [], threading.Event()
    threads = [threading.Thread(target=reader, args=(w, results, stop)) for _ in range(n)]
    for t in threads:
        t.start()
    try:
        yield results
    finally:
        stop.set()
        for t in threads:
            t.join()


@pytest.mark.skipif(not PGCTL, reason="MOLT_TEST_PGCTL is not set")
def test_a_stopped_replica_loses_no_read():
    with replicated(stdio=False) as w:
        c = w.conn
        wait_healthy(c)
        # two slow reads, one on each replica (the fewest in flight wins):
        # the one on replica 1 is killed by the stop and must end Ok anyway
        slow = w.connect()
        for _ in range(2):
            slow.request("db_query", {"db_alias": "main",
                                      "sql": "select pg_sleep(1.5), inet_server_port()"})
        time.sleep(0.1)
        with readers(w, 4) as results:
            time.sleep(0.3)
            replica_ctl(1, "stop", "-m", "fast")
            wait_for(lambda: not servers(c)["main@replica1"]["healthy"], "stopped replica in")
            time.sleep(0.5)
            n_down = len(results)
            time.sleep(0.3)
            assert all(p != PORTS["r1"] for st, p in results[n_down:]), results[n_down:]
            replica_ctl(1, "start")
            wait_healthy(c)
            time.sleep(0.3)
        bad = [r for r in results if r[0] != "Ok"]
        assert not bad, bad[:5]
        slow_ports = {port_of(slow.recv(timeout=30)) for _ in range(2)}
        assert slow_ports == {PORTS["primary"], PORTS["r2"]}, slow_ports
        s = servers(c)["main@replica1"]
        # reads in flight there when it stopped ran again on the primary
        assert s["healthy"] and s["rerouted"] >= 1, s
        ports = [port_of(q(c, "select inet_server_port()")) for _ in range(20)]
        assert PORTS["r1"] in ports


# a timestamp past Arrow's Timestamp(us): a value arrow_ipc cannot carry
OUT_OF_ARROW = "select '294276-12-31 23:59:59'::timestamp as t"


def test_a_value_the_format_cannot_carry_takes_no_replica_out():
    """A read-only client whose reads fail on their own values gets that
    error where it ran: its reads do not move to the primary and the
    replicas stay in for every other session."""
    with replicated(stdio=False) as w:
        c = w.conn
        wait_healthy(c)
        bad, stop = [], threading.Event()

        def attack():
            a = w.connect()
            while not stop.is_set():
                bad.append(q(a, OUT_OF_ARROW, result_format="arrow_ipc"))
        t = threading.Thread(target=attack)
        t.start()
        try:
            wait_for(lambda: len(bad) >= 20, "no answer to the attacker")
            victim = w.connect()
            ports = [port_of(q(victim, "select inet_server_port()")) for _ in range(100)]
        finally:
            stop.set()
            t.join()
        assert PORTS["primary"] not in ports, ports.count(PORTS["primary"])
        s = servers(c)
        assert s["main"]["requests"] == 0, s["main"]
        for name in ("main@replica1", "main@replica2"):
            assert s[name]["healthy"] and s[name]["rerouted"] == 0, s[name]
        assert {(r["status"], r.get("sqlstate")) for r in bad} == {("DbError", "22000")}, bad[0]
        assert "timestamp out of range" in bad[0]["error"], bad[0]


def test_a_read_whose_connection_is_terminated_runs_on_the_primary():
    """A replica read whose server connection ends (57P01 from
    pg_terminate_backend) runs again on the primary: one Ok answer."""
    marker = "rep_terminated_marker"
    su = [os.environ["MOLT_TEST_REPLICA1_DSN"], os.environ["MOLT_TEST_REPLICA2_DSN"]]
    with replicated() as w:
        c = w.conn
        wait_healthy(c)
        rid = c.request("db_query", {"db_alias": "main", "sql":
                                     f"select pg_sleep(2) as \"{marker}\", inet_server_port()"})
        running = f"select count(*) from pg_stat_activity where query like '%{marker}%' " \
                  "and pid <> pg_backend_pid()"
        wait_for(lambda: sum(int(psql(d, running)) for d in su) == 1, "the read never ran")
        for d in su:
            psql(d, running.replace("count(*)", "pg_terminate_backend(pid)"))
        r = c.recv(timeout=30)
        assert r["request_id"] == rid and port_of(r) == PORTS["primary"], r
        s = servers(c)
        assert s["main@replica1"]["rerouted"] + s["main@replica2"]["rerouted"] == 1, s


@pytest.mark.skipif(not PGCTL, reason="MOLT_TEST_PGCTL is not set")
def test_the_primary_restarted_reads_go_on():
    su = os.environ["MOLT_TEST_DSN"]
    table = f"rep_restart_{os.getpid()}"
    psql(su, f"create table {table} (v int); grant all on {table} to molt_app")
    with replicated(stdio=False) as w:
        c = w.conn
        wait_healthy(c)
        with readers(w, 2) as results:
            time.sleep(0.2)
            subprocess.run([PGCTL, "restart", "-m", "fast"], check=True, capture_output=True,
                           timeout=60)
            time.sleep(0.5)
        bad = [r for r in results if r[0] != "Ok"]
        assert not bad, bad[:5]
        # writes work again once the primary is back (the first may meet a dead
        # connection and fail clearly)
        statuses = []
        wait_for(lambda: statuses.append(ex(c, f"insert into {table} (v) values (1)")["status"])
                 or statuses[-1] == "Ok", f"writes never came back: {statuses}")
        assert len(statuses) <= 3, statuses
    psql(su, f"drop table {table}")


def test_pinning_every_read_gets_a_client_only_its_share_of_the_primary(table):
    """A hostile client pins 40 slow reads to the primary (4 connections); a
    write and a pinned read of another client each wait for one slot, not
    for the queue; a third client's reads go to the replicas at once."""
    with replicated(stdio=False) as w:
        c = w.conn
        wait_healthy(c)
        hostile = w.connect()
        rids = [hostile.request("db_query", {"db_alias": "main", "pin_primary": True,
                                             "sql": "select pg_sleep(0.25)"}) for _ in range(40)]
        time.sleep(0.1)
        t0 = time.monotonic()
        assert ex(c, f"insert into {table} (v) values (1)")["status"] == "Ok"
        assert q(c, "select 1", pin_primary=True)["status"] == "Ok"
        spent = time.monotonic() - t0
        assert spent < 1.2, spent  # the queue alone is 40 / 4 * 0.25 = 2.5 s
        reader_ = w.connect()  # wrote nothing: its reads go to the replicas
        t0 = time.monotonic()
        assert port_of(q(reader_, "select inet_server_port()")) in (PORTS["r1"], PORTS["r2"])
        assert time.monotonic() - t0 < 1.0  # not behind the 2.5 s queue on the primary
        for _ in rids:
            assert hostile.recv(timeout=30)["status"] == "Ok"


def test_configuration_is_checked(tmp_path):
    def run(*args):
        return subprocess.run([WORKER_BIN, "--stdio", *args], capture_output=True, text=True,
                              timeout=10, stdin=subprocess.DEVNULL)
    r = run("--db", f"main=sqlite:{tmp_path}/x.db", "--db-replica", f"main={R1}")
    assert r.returncode == 2 and "only a PostgreSQL database has replicas" in r.stderr
    r = run("--db", f"main={P}", "--db-replica", "main=sqlite::memory:")
    assert r.returncode == 2 and "replica DSN" in r.stderr
    r = run("--db", f"main={P}", "--db-replica", "main=host=x sslmode=bogus")
    assert r.returncode == 2 and "alias main replica" in r.stderr
    assert "host=x" not in r.stderr
    r = run("--db", f"main={P}", "--db-replica", "nodsn")
    assert r.returncode == 2 and "ALIAS=DSN" in r.stderr
    h = run("--help").stdout
    for name in ("--db-replica", "max_replica_lag_ms", "read_your_writes_ms",
                 "replica_check_interval_ms"):
        assert name in h


def test_a_replica_cannot_be_named_by_a_client():
    with replicated() as w:
        c = w.conn
        r = c.query("select 1", db_alias="main@replica1")
        assert r["status"] == "InvalidInput" and "unknown db_alias" in r["error"], r


def worker_cmd():
    return [WORKER_BIN, "--stdio", "--db", f"main={P}", "--db-replica", f"main={R1}",
            "--db-replica", f"main={R2}", *FAST]


def client_wait_healthy(stats):
    wait_for(lambda: all(s["healthy"] for s in stats()["replicas"]["main"]), "replicas never healthy")


def test_clients_and_molt_sql_pin_to_the_primary():
    import asyncio

    import molt_sql
    from molt_db_adapter import AsyncMoltClient, MoltClient

    sql = "select inet_server_port()"
    replicas = {PORTS["r1"], PORTS["r2"]}
    su = os.environ["MOLT_TEST_DSN"]
    psql(su, "create or replace view rep_server_port as select inet_server_port() as port; "
             "grant select on rep_server_port to molt_app")
    for n in (1, 2):
        wait_for(lambda: psql(os.environ[f"MOLT_TEST_REPLICA{n}_DSN"],
                              "select count(*) from pg_views where viewname = 'rep_server_port'") == "1",
                 "the view never reached the replica")
    with MoltClient(worker_cmd(), db_alias="main") as c:
        client_wait_healthy(c.stats)
        assert c.query(sql).rows[0][0] in replicas
        assert c.query(sql, pin_primary=True).rows[0][0] == PORTS["primary"]
        with c.stream(sql, pin_primary=True) as s:
            assert [r[0] for r in s] == [PORTS["primary"]]
        with c.stream(sql) as s:
            assert [r[0] for r in s][0] in replicas
        view = molt_sql.table("rep_server_port")
        port = view.select(view.port)
        assert port.using(c, "main").fetch_val_sync() in replicas
        assert port.using(c, "main", pin_primary=True).fetch_val_sync() == PORTS["primary"]

    async def run_async():
        async with AsyncMoltClient(worker_cmd(), db_alias="main") as ac:
            deadline = time.monotonic() + 10
            while not all(s["healthy"] for s in (await ac.stats())["replicas"]["main"]):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert (await ac.query(sql)).rows[0][0] in replicas
            assert (await ac.query(sql, pin_primary=True)).rows[0][0] == PORTS["primary"]
            async with ac.stream(sql, pin_primary=True) as s:
                assert [r[0] async for r in s] == [PORTS["primary"]]
    asyncio.run(run_async())


@pytest.mark.skipif(not os.environ.get("MOLT_TEST_BOUNCER_DSN"), reason="PgBouncer is not running")
def test_behind_pgbouncer(pg):
    """The primary behind PgBouncer in transaction mode (its position read
    through it), the replicas direct: placement and read-your-writes hold."""
    pg.execute("create table if not exists rep_bouncer (v int)")
    pg.execute("truncate rep_bouncer")
    su = {n: os.environ[f"MOLT_TEST_REPLICA{n}_DSN"] for n in (1, 2)}
    args = ["--db-replica", f"main={su[1]}", "--db-replica", f"main={su[2]}", *FAST,
            "--allow-write", "main", "--pool", "main:statement_mode=unnamed",
            "--pool", "main:client_check_ms=0"]
    with Worker({"main": os.environ["MOLT_TEST_BOUNCER_DSN"]}, *args) as w:
        c = w.conn
        wait_healthy(c)
        other = []
        for i in range(1, 41):
            assert ex(c, "insert into rep_bouncer values ($1)", [i])["status"] == "Ok"
            rows = decode(q(c, "select max(v) from rep_bouncer"))["rows"]
            assert rows == [[i]], (i, rows)
        assert port_of(q(c, "select inet_server_port()", pin_primary=True)) == PORTS["primary"]
        # once a check has seen the replicas replay past the last write (how
        # soon depends on the machine's load), reads go back to them
        wait_for(lambda: port_of(q(c, "select inet_server_port()")) != PORTS["primary"],
                 "reads never went back to the replicas after the writes")
        other = [port_of(q(c, "select inet_server_port()")) for _ in range(10)]
        assert set(other) <= {PORTS["r1"], PORTS["r2"]}, other
        assert servers(c)["main"]["checks_failed"] == 0
    pg.execute("drop table rep_bouncer")


def test_transactions_run_on_the_primary_and_their_commits_are_read_back(table):
    """tx_begin and every statement with its tx_id run on the primary; after
    the commit the session's reads see it even with both replicas paused."""
    from molt_db_adapter import MoltClient

    with MoltClient([*worker_cmd(), "--allow-write", "main"], db_alias="main") as c:
        client_wait_healthy(c.stats)
        with replay_paused(R1, R2):
            for i in range(1, 21):
                with c.transaction() as tx:
                    tx.execute(f"insert into {table} (v) values ($1)", [i])
                    assert tx.query(f"select max(v), inet_server_port() from {table}").rows == \
                        [(i, PORTS["primary"])]
                assert c.query(f"select max(v) from {table}").rows == [(i,)]


def test_copy_in_is_a_write_its_session_reads_back(table):
    from molt_db_adapter import MoltClient

    with MoltClient([*worker_cmd(), "--allow-write", "main"], db_alias="main") as c:
        client_wait_healthy(c.stats)
        with replay_paused(R1, R2):
            for i in range(1, 11):
                assert c.copy_in(table, [(i * 10 + k,) for k in range(3)], columns=["v"]) == 3
                assert c.query(f"select count(*) from {table}").rows == [(3 * i,)]
        s = {x["server"]: x for x in c.stats()["replicas"]["main"]}
        assert s["main"]["requests"] >= 20  # 10 copies, and the reads after them
