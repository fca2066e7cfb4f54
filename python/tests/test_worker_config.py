"""molt_worker's flags, config file, --help, socket handling, signals,
limits, the Prometheus endpoint and the request log."""
import json
import os
import select
import signal
import socket
import sqlite3
import stat
import subprocess
import time
import urllib.request

import pytest

from worker_client import Worker, decode, free_port, WORKER_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(WORKER_BIN),
                                reason=f"{WORKER_BIN} is not built")

MEDIUM = ("with recursive r(i) as (select 1 union all select i + 1 from r "
          "where i < 1500000) select count(*) from r")
SLOW = MEDIUM.replace("1500000", "300000000")


def run(*args, timeout=10):
    return subprocess.run([WORKER_BIN, *args], capture_output=True, text=True, timeout=timeout)


def test_help_documents_every_setting():
    r = run("--help")
    assert r.returncode == 0
    for name in ["--stdio", "--socket", "--db ALIAS=DSN", "--allow-write", "--pool",
                 "--config", "--default-timeout-ms", "--max-rows", "--max-request-bytes",
                 "--max-inflight", "--metrics-listen", "--log-requests", "--shutdown-grace-ms",
                 "--socket-mode", "--batch-rows", "--max-timeout-ms", "--max-result-bytes",
                 "--max-batch-rows", "--max-sessions", "--max-unread-bytes",
                 "--write-timeout-ms", "--frame-timeout-ms", "--metrics-max-conns",
                 "--max-buffered-request-bytes",
                 "--metrics-timeout-ms", "--allow-core-dumps",
                 "min_conns", "max_conns", "max_idle_ms", "max_lifetime_ms",
                 "lifetime_jitter_pct", "connect_timeout_ms", "query_timeout_ms", "max_wait_ms",
                 "health_check_interval_ms", "statement_cache_size", "statement_mode",
                 "pipeline_depth", "cancel_timeout_ms", "reconnect_min_ms", "reconnect_max_ms",
                 "statement_timeout_ms", "client_check_ms",
                 "sqlite_conns", "sqlite_busy_timeout_ms", "sqlite_wal", "sqlite::memory:"]:
        assert name in r.stdout, name
    assert "30000" in r.stdout and "16777216" in r.stdout and "100000" in r.stdout
    assert "3600000" in r.stdout and "67108864" in r.stdout and "134217728" in r.stdout
    assert run("--version").stdout.startswith("molt_worker ")


@pytest.mark.parametrize("args,needle", [
    (["--db", "default=sqlite::memory:"], "--stdio or --socket"),
    (["--stdio"], "no database"),
    (["--stdio", "--db", "x=mysql://h/d"], "unrecognised DSN"),
    (["--stdio", "--db", "bad name=sqlite::memory:"], "bad alias name"),
    (["--stdio", "--db", "x=sqlite::memory:", "--max-rows", "0"], "max_rows"),
    (["--stdio", "--db", "x=sqlite::memory:", "--bogus"], "unknown option"),
    (["--stdio", "--db", "x=sqlite::memory:", "--pool", "x:nope=1"], "unknown database setting"),
    (["--stdio", "--db", "x=sqlite::memory:", "--pool", "x:statement_mode=fast"], "statement_mode"),
    (["--stdio", "--db", "x=sqlite::memory:", "--session-request-share-pct", "101"],
     "session_request_share_pct (101) is above 100"),
    (["--stdio", "--db", "x=sqlite::memory:", "--max-held-request-bytes", str(32 << 20)],
     "below max_request_bytes"),
    (["--stdio", "--db", "x=postgresql://u:hunter2@h/d?sslmode=sideways"], "alias x"),
])
def test_bad_configuration(args, needle):
    r = run(*args)
    assert r.returncode == 2, r
    assert needle in r.stderr, r.stderr
    assert "hunter2" not in r.stderr


def test_config_file(tmp_path):
    db = tmp_path / "c.db"
    cfg = tmp_path / "w.conf"
    cfg.write_text(f"""# worker settings
max_rows = 2
default_timeout_ms = 5000
[db main]
dsn = sqlite://{db}
allow_write = true
sqlite_conns = 2
""")
    with Worker({}, "--config", str(cfg)) as w:
        c = w.conn
        r = c.call("db_exec", {"db_alias": "main", "sql": "create table t(a)", "allow_write": True})
        assert r["status"] == "Ok", r
        c.call("db_exec", {"db_alias": "main", "sql": "insert into t values (1),(2),(3)",
                           "allow_write": True})
        d = decode(c.call("db_query", {"db_alias": "main", "sql": "select a from t"}))
        assert d["truncated"] is True and len(d["rows"]) == 2  # max_rows from the file
    cfg.write_text("[db main]\ndsn = sqlite::memory:\nnot_a_setting = 1\n")
    r = run("--stdio", "--config", str(cfg))
    assert r.returncode == 2 and "w.conf:3" in r.stderr and "not_a_setting" in r.stderr


def test_socket_mode_and_stale_file(tmp_path):
    path = str(tmp_path / "s.sock")
    # a stale socket file: bound, nobody listening
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()
    assert os.path.exists(path)
    with Worker({"default": "sqlite::memory:"}, stdio=False, socket_path=path) as w:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert w.conn.call("ping")["status"] == "Ok"
        # a second worker must not steal a live socket
        r = run("--socket", path, "--db", "default=sqlite::memory:")
        assert r.returncode != 0 and "another process listens" in r.stderr
        assert w.conn.call("ping")["status"] == "Ok"
    assert not os.path.exists(path)
    other = tmp_path / "file"
    other.write_text("x")
    r = run("--socket", str(other), "--db", "default=sqlite::memory:")
    assert r.returncode != 0 and "not a socket" in r.stderr
    with Worker({"default": "sqlite::memory:"}, "--socket-mode", "0660", stdio=False,
                socket_path=path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660


def test_many_in_flight_per_connection_and_sessions(tmp_path):
    with Worker({"default": "sqlite::memory:"}, stdio=False) as w:
        conns = [w.connect() for _ in range(4)]
        for c in conns:
            for i in range(50):
                c.request("db_query", {"sql": "select $1", "params":
                                       {"mode": "positional", "values": [i]}}, rid=i + 1)
        for c in conns:
            seen = set()
            for _ in range(50):
                r = c.recv()
                assert r["status"] == "Ok"
                assert decode(r)["rows"] == [[r["request_id"] - 1]]
                seen.add(r["request_id"])
            assert seen == set(range(1, 51))
        st = decode(conns[0].call("stats"))
        assert st["worker"]["sessions"] == 5


def test_max_inflight_busy():
    with Worker({"default": "sqlite::memory:"}, "--max-inflight", "1") as w:
        c = w.conn
        slow = c.request("db_query", {"sql": SLOW}, timeout_ms=10000)
        r = c.call("db_query", {"sql": "select 1"})
        assert r["status"] == "Busy" and "max_inflight" in r["error"]
        assert c.call("ping")["status"] == "Ok"  # ping is always answered
        # a cancel is served past max_inflight too: it frees room
        t0 = time.monotonic()
        cid = c.request("cancel", {"request_id": slow})
        got = {}
        for _ in range(2):
            x = c.recv(timeout=5)
            got[x["request_id"]] = x
        assert got[slow]["status"] == "Cancelled" and decode(got[cid]) == {"found": True}
        assert time.monotonic() - t0 < 2


def wait_stderr(w, needle, timeout=10):
    """The worker's stderr up to the first time it holds needle."""
    deadline = time.monotonic() + timeout
    fd = w.proc.stderr.fileno()
    seen = b""
    while needle.encode() not in seen:
        left = deadline - time.monotonic()
        r, _, _ = select.select([fd], [], [], max(left, 0))
        chunk = os.read(fd, 65536) if r else b""
        if not chunk:
            raise AssertionError(f"no {needle!r} on stderr: {seen!r}")
        seen += chunk
    return seen.decode(errors="replace")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_in_flight(sig, tmp_path):
    # The in-flight query waits on a lock this test holds, so it is still
    # running when the late request arrives, however fast the machine.
    db = tmp_path / "lock.db"
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("create table t(x)")
    con.execute("insert into t values (7)")
    w = Worker({"default": f"sqlite://{db}"}, "--shutdown-grace-ms", "30000",
               "--pool", "default:sqlite_wal=false",
               "--pool", "default:sqlite_busy_timeout_ms=30000").start()
    c = w.conn
    con.execute("begin exclusive")
    rid = c.request("db_query", {"sql": "select x from t"}, timeout_ms=30000)
    assert c.call("ping")["status"] == "Ok"  # the query was read before it
    w.proc.send_signal(sig)
    wait_stderr(w, "shutting down")
    late = c.request("db_query", {"sql": "select 1"})
    r = c.recv(timeout=10)
    assert r["request_id"] == late and r["status"] == "Busy"
    con.execute("commit")
    r = c.recv(timeout=10)
    assert r["request_id"] == rid and decode(r)["rows"] == [[7]]
    assert w.proc.wait(10) == 0
    con.close()


def test_signal_grace_expires_busy():
    w = Worker({"default": "sqlite::memory:"}, "--shutdown-grace-ms", "200").start()
    c = w.conn
    rid = c.request("db_query", {"sql": SLOW}, timeout_ms=60000)
    assert c.call("ping")["status"] == "Ok"  # the query was read before it
    t0 = time.monotonic()
    w.proc.send_signal(signal.SIGTERM)
    r = c.recv(timeout=10)
    assert r["request_id"] == rid and r["status"] == "Busy"
    assert 0.15 < time.monotonic() - t0 < 3.0
    assert w.proc.wait(10) == 0


def test_stdin_eof_cancels_and_exits():
    w = Worker({"default": "sqlite::memory:"}).start()
    w.conn.request("db_query", {"sql": SLOW}, timeout_ms=60000)
    time.sleep(0.1)
    t0 = time.monotonic()
    w.proc.stdin.close()
    assert w.proc.wait(10) == 0
    assert time.monotonic() - t0 < 2


def test_metrics_endpoint_and_request_log():
    port = free_port()
    w = Worker({"default": "sqlite::memory:"}, "--metrics-listen", f"127.0.0.1:{port}",
               "--log-requests").start()
    c = w.conn
    c.call("db_query", {"sql": "select $1", "tag": "t1",
                        "params": {"mode": "positional", "values": ["SECRET-VALUE-123"]}})
    c.call("db_query", {"sql": "select nope"})
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "molt_worker_requests_total 2" in text
    assert "molt_worker_ok_total 1" in text and "molt_worker_db_errors_total 1" in text
    assert 'molt_worker_alias_size{alias="default"} 1' in text
    assert w.stop() == 0
    lines = [json.loads(x) for x in w.stderr.splitlines() if x.startswith("{")]
    lines = [x for x in lines if "request_id" in x]  # not the lifecycle lines
    assert [x["status"] for x in lines] == ["Ok", "DbError"]
    assert lines[0]["tag"] == "t1" and lines[0]["alias"] == "default"
    for k in ("start", "queue_us", "exec_us", "handler_us", "request_id", "session", "ts"):
        assert k in lines[0]
    assert "SECRET-VALUE-123" not in w.stderr
    r = run("--stdio", "--db", "x=sqlite::memory:", "--metrics-listen", "0.0.0.0:9")
    assert r.returncode == 2 and "loopback" in r.stderr
