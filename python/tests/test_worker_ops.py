"""molt_worker's operations surface against a real worker: the Prometheus
exposition (parsed by prometheus_client), SIGHUP reload under load, the ready
line and the systemd notify protocol, --log-format, and settings from
MOLT_WORKER_* environment variables."""
import json
import shutil
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request

import pytest

from worker_client import Worker, decode, free_port, skip_on_host_bridge, WORKER_BIN

parser = pytest.importorskip("prometheus_client.parser")

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = pytest.mark.skipif(not os.path.exists(WORKER_BIN),
                                reason=f"{WORKER_BIN} is not built")


def scrape(port):
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def families(text):
    """The parsed families, after checking the text's own HELP/TYPE lines:
    every sample belongs to a family announced by both, counters end in
    _total, histograms' buckets are cumulative and end with +Inf == _count."""
    fams = {f.name: f for f in parser.text_string_to_metric_families(text)}
    helped = {ln.split()[2] for ln in text.splitlines() if ln.startswith("# HELP ")}
    typed = {ln.split()[2]: ln.split()[3] for ln in text.splitlines() if ln.startswith("# TYPE ")}
    assert helped == set(typed), helped ^ set(typed)
    for ln in text.splitlines():
        if ln.startswith("#") or not ln:
            continue
        name = ln.split("{")[0].split(" ")[0]
        base = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and typed.get(name[:-len(suffix)]) == "histogram":
                base = name[:-len(suffix)]
        assert base in typed, f"sample {name} has no TYPE line"
    for name, kind in typed.items():
        if kind == "counter":
            assert name.endswith("_total"), name
    for f in fams.values():
        assert f.documentation, f.name
        assert f.type in ("counter", "gauge", "histogram"), (f.name, f.type)
        if f.type == "counter":
            assert all(s.name.endswith("_total") for s in f.samples), f.name
        if f.type == "histogram":
            series = {}
            for s in f.samples:
                key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                series.setdefault(key, {"buckets": []})
                if s.name.endswith("_bucket"):
                    series[key]["buckets"].append((s.labels["le"], s.value))
                elif s.name.endswith("_count"):
                    series[key]["count"] = s.value
            assert series, f.name
            for key, sr in series.items():
                values = [v for _, v in sr["buckets"]]
                assert values == sorted(values), (f.name, key, values)
                assert sr["buckets"][-1][0] == "+Inf", (f.name, key)
                assert sr["buckets"][-1][1] == sr["count"], (f.name, key)
    return fams


def sample(fams, family, name, **labels):
    for s in fams[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((family, name, labels))


def test_prometheus_exposition_sqlite():
    port = free_port()
    with Worker({"main": "sqlite::memory:", "side": "sqlite::memory:"},
                "--metrics-listen", f"127.0.0.1:{port}", "--allow-write", "main") as w:
        assert w.conn.call("ping")["status"] == "Ok"  # the port is open by now
        before = families(scrape(port))
        assert sample(before, "molt_worker_requests", "molt_worker_requests_total") == 1
        c = w.conn
        for _ in range(5):
            assert c.query("select 1", db_alias="main")["status"] == "Ok"
        assert c.query("select nope", db_alias="side")["status"] == "DbError"
        assert c.call("db_exec", {"db_alias": "main", "sql": "create table t(a)",
                                  "allow_write": True})["status"] == "Ok"
        after = families(scrape(port))
    assert sample(after, "molt_worker_requests", "molt_worker_requests_total") == 8
    assert sample(after, "molt_worker_db_errors", "molt_worker_db_errors_total") == 1
    assert sample(after, "molt_worker_alias_requests", "molt_worker_alias_requests_total",
                  alias="main") == 6
    assert sample(after, "molt_worker_alias_size", "molt_worker_alias_size", alias="side") >= 1
    for g in ("molt_worker_inflight", "molt_worker_queued", "molt_worker_transactions", "molt_worker_sessions",
              "molt_worker_alias_in_use"):
        assert after[g].type == "gauge", g
    h = "molt_worker_request_seconds"
    assert sample(after, h, h + "_count", alias="main", entry="db_query") == 5
    assert sample(after, h, h + "_count", alias="main", entry="db_exec") == 1
    assert sample(after, h, h + "_count", alias="side", entry="db_query") == 1
    assert sample(after, h, h + "_bucket", alias="main", entry="db_query", le="+Inf") == 5
    assert sample(after, h, h + "_sum", alias="main", entry="db_query") > 0


@pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)")
def test_prometheus_exposition_postgres_pools_per_alias():
    port = free_port()
    with Worker({"a": DSN, "b": DSN, "lite": "sqlite::memory:"},
                "--metrics-listen", f"127.0.0.1:{port}") as w:
        c = w.conn
        for _ in range(3):
            assert c.query("select 1", db_alias="a", tag="hot")["status"] == "Ok"
        assert c.query("select 1/0", db_alias="b")["status"] == "DbError"
        fams = families(scrape(port))
    q = "molt_db_pool_query_seconds"
    assert sample(fams, q, q + "_count", alias="a", tag="hot") == 3
    assert sample(fams, "molt_db_pool_requests", "molt_db_pool_requests_total", alias="b") >= 1
    assert sample(fams, "molt_db_pool_errors", "molt_db_pool_errors_total",
                  alias="b", sqlstate_class="22") == 1
    assert sample(fams, "molt_worker_alias_conns_opened", "molt_worker_alias_conns_opened_total",
                  alias="a") >= 1


def test_metrics_remote_address_needs_the_flag():
    base = [WORKER_BIN, "--stdio", "--db", "x=sqlite::memory:"]
    r = subprocess.run(base + ["--metrics-listen", "0.0.0.0:9"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and "metrics_allow_remote" in r.stderr
    port = free_port()
    with Worker({"x": "sqlite::memory:"}, "--metrics-listen", f"0.0.0.0:{port}",
                "--metrics-allow-remote", "--metrics-max-conns", "1") as w:
        assert w.conn.call("ping")["status"] == "Ok"
        # the connection cap still holds on a remote address: while one
        # silent connection is held open, a second takes its place
        held = socket.create_connection(("127.0.0.1", port), timeout=5)
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", port), timeout=5)
        extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        assert extra.recv(100).startswith(b"HTTP/1.0 200 OK")
        try:
            assert held.recv(100) == b""
        except ConnectionResetError:
            pass
        extra.close()
        held.close()
        time.sleep(0.2)
        assert "molt_worker_requests_total" in scrape(port)


def sqlite_table(db, n):
    """A SQLite file with table t of n rows."""
    con = sqlite3.connect(db)
    con.execute("create table t(a)")
    con.executemany("insert into t values (?)", [(i,) for i in range(n)])
    con.commit()
    con.close()
    return db


def write_conf(path, db, max_rows, extra=""):
    path.write_text(f"max_rows = {max_rows}\n{extra}[db main]\ndsn = sqlite://{db}\n")


def test_sighup_reloads_under_load(tmp_path):
    db = sqlite_table(tmp_path / "r.db", 20)
    conf = tmp_path / "w.conf"
    write_conf(conf, db, 5)
    w = Worker({}, "--config", str(conf), stdio=False).start()
    try:
        assert len(decode(w.conn.query("select a from t", db_alias="main"))["rows"]) == 5
        results, stop = [], threading.Event()

        def load():
            c = w.connect()
            while not stop.is_set():
                r = c.query("select a from t", db_alias="main")
                results.append((r["status"], len(decode(r)["rows"]) if r["status"] == "Ok" else r))

        threads = [threading.Thread(target=load) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        # a setting that changes at run time, one that cannot, an alias added
        write_conf(conf, db, 3, "socket_mode = 0666\n")
        conf.write_text(conf.read_text() + "[db later]\ndsn = sqlite::memory:\n")
        for _ in range(5):
            w.proc.send_signal(signal.SIGHUP)
            time.sleep(0.1)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        failed = [r for r in results if r[0] != "Ok"]
        assert not failed, failed[:3]
        sizes = [n for _, n in results]
        assert len(sizes) > 20 and sizes[-1] == 3 and 5 in sizes, (len(sizes), set(sizes))
        assert w.proc.poll() is None
        c = w.conn
        assert len(decode(c.query("select a from t", db_alias="main"))["rows"]) == 3
        assert c.query("select 1", db_alias="later")["status"] == "InvalidInput"
        assert oct(os.stat(w.socket_path).st_mode & 0o777) == oct(0o600)
        # a file that does not parse: logged, the running configuration kept
        conf.write_text("max_rows = 9\nthis is not a setting\n")
        w.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert w.proc.poll() is None
        assert len(decode(c.query("select a from t", db_alias="main"))["rows"]) == 3
    finally:
        w.stop()
    err = w.stderr
    assert "reload: max_rows = 3" in err
    assert "socket_mode changes only at a restart" in err
    assert "alias later is new" in err
    assert "reload failed, the running configuration is kept" in err and "w.conf:2" in err


def notify_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    return s


@pytest.mark.parametrize("abstract", [False, True])
def test_ready_line_and_systemd_notify(tmp_path, abstract):
    if abstract:
        name = f"molt-notify-{os.getpid()}-{time.monotonic_ns()}"
        s = notify_socket("\0" + name)
        addr = "@" + name
    else:
        addr = str(tmp_path / "notify")
        s = notify_socket(addr)
    w = Worker({"x": "sqlite::memory:"}, stdio=False, env={"NOTIFY_SOCKET": addr}).start()
    try:
        assert s.recv(100) == b"READY=1"
        assert w.conn.call("ping")["status"] == "Ok"
        w.proc.send_signal(signal.SIGHUP)
        # RELOADING=1 with the time the reload began (CLOCK_MONOTONIC, us)
        msg = s.recv(100).split(b"\n")
        assert msg[0] == b"RELOADING=1", msg
        usec = int(msg[1].removeprefix(b"MONOTONIC_USEC="))
        assert abs(usec - time.monotonic_ns() // 1000) < 5_000_000
        assert s.recv(100) == b"READY=1"
        w.proc.send_signal(signal.SIGTERM)
        assert s.recv(100) == b"STOPPING=1"
        assert w.proc.wait(10) == 0
    finally:
        w.stop()
        s.close()
    lines = [json.loads(x) for x in w.stderr.splitlines()]
    assert any(x.get("msg", "").startswith("ready: listening on " + w.socket_path)
               for x in lines), lines


def test_ready_line_comes_when_requests_are_accepted():
    w = Worker({"x": "sqlite::memory:"}).start()
    try:
        # stdio: nothing on stdout but answers; the ready line is on stderr
        fd = w.proc.stderr.fileno()
        os.set_blocking(fd, True)
        first = w.proc.stderr.readline().decode()
        assert json.loads(first)["msg"].startswith("ready: serving on stdin/stdout")
        assert w.conn.call("ping")["status"] == "Ok"
    finally:
        w.stop()


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_format_every_line(fmt, tmp_path):
    with Worker({"default": "sqlite::memory:"}, "--log-requests", "--log-format", fmt,
                stdio=False) as w:
        c = w.conn
        r = c.query("select $1 as v", {"mode": "positional", "values": ["PARAM-SECRET-42"]})
        assert decode(r)["rows"] == [["PARAM-SECRET-42"]]
        assert c.query("select nope")["status"] == "DbError"
        w.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
    lines = w.stderr.splitlines()
    assert "PARAM-SECRET-42" not in w.stderr
    assert len(lines) >= 5  # ready, 2 requests, reloaded, shutting down
    if fmt == "json":
        objs = [json.loads(x) for x in lines]  # every line is JSON
        reqs = [x for x in objs if "request_id" in x]
        assert [x["status"] for x in reqs] == ["Ok", "DbError"]
        assert reqs[0]["sqlstate"] == "" and len(reqs[1]["sqlstate"]) == 5
        assert any(x.get("msg") == "reloaded" for x in objs)
    else:
        assert all(x.startswith("molt_worker: ") for x in lines), lines
        reqs = [x for x in lines if x.startswith("molt_worker: request ")]
        assert len(reqs) == 2
        assert "status=DbError sqlstate=" in reqs[1] and "sqlstate=-" not in reqs[1]
        assert "molt_worker: reloaded" in lines


@pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)")
def test_log_dberror_sqlstate_postgres():
    with Worker({"default": DSN}, "--log-requests") as w:
        assert w.conn.query("select 1/0")["status"] == "DbError"
    reqs = [json.loads(x) for x in w.stderr.splitlines() if '"request_id"' in x]
    assert reqs[-1]["sqlstate"] == "22012"


def test_settings_from_environment(tmp_path):
    db = sqlite_table(tmp_path / "e.db", 10)

    def nrows(*args, env):
        with Worker({"default": f"sqlite://{db}"}, *args, env=env) as w:
            return len(decode(w.conn.query("select a from t"))["rows"])

    assert nrows(env={"MOLT_WORKER_MAX_ROWS": "2"}) == 2
    conf = tmp_path / "w.conf"
    conf.write_text("max_rows = 3\n")
    assert nrows("--config", str(conf), env={"MOLT_WORKER_MAX_ROWS": "2"}) == 3  # file > env
    assert nrows("--config", str(conf), "--max-rows", "4",
                 env={"MOLT_WORKER_MAX_ROWS": "2"}) == 4  # flag > file
    # the socket path from the environment
    path = str(tmp_path / "env.sock")
    p = subprocess.Popen([WORKER_BIN, "--db", f"default=sqlite://{db}"],
                         env=dict(os.environ, MOLT_WORKER_SOCKET=path),
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert os.path.exists(path)
    finally:
        p.terminate()
        assert p.wait(10) == 0
    r = subprocess.run([WORKER_BIN, "--stdio", "--db", "x=sqlite::memory:"],
                       env=dict(os.environ, MOLT_WORKER_MAX_INFLIGHT="lots"),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "MOLT_WORKER_MAX_INFLIGHT" in r.stderr


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples")


def test_container_entrypoint(tmp_path):
    """examples/container/entrypoint.sh under dash: databases from MOLT_DB_*,
    settings from MOLT_WORKER_*, no DSN on the worker's command line, exec'd
    (the worker is the process that gets the signals)."""
    # before the entrypoint starts a worker: a skip from Worker() below
    # would leave it running
    skip_on_host_bridge("the container entrypoint runs molt_worker itself")
    db = tmp_path / "c.db"
    sock = tmp_path / "run" / "w.sock"
    env = dict(os.environ, PATH=os.path.dirname(WORKER_BIN) + ":" + os.environ["PATH"],
               TMPDIR=str(tmp_path), MOLT_WORKER_SOCKET=str(sock),
               MOLT_WORKER_MAX_ROWS="2", MOLT_DB_DEFAULT=f"sqlite://{db}",
               MOLT_DB_OTHER="sqlite::memory:", MOLT_DB_WRITE="default")
    p = subprocess.Popen(["dash", os.path.join(EXAMPLES, "container", "entrypoint.sh")],
                         env=env, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    w = Worker({}, stdio=False, socket_path=str(sock))
    w.proc = p
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
            time.sleep(0.02)
        c = w.connect()
        assert c.call("db_exec", {"sql": "create table t(a)", "allow_write": True})["status"] == "Ok"
        c.call("db_exec", {"sql": "insert into t values (1),(2),(3)", "allow_write": True})
        assert len(decode(c.query("select a from t"))["rows"]) == 2  # MOLT_WORKER_MAX_ROWS
        assert decode(c.query("select 5", db_alias="other"))["rows"] == [[5]]
        r = c.call("db_exec", {"db_alias": "other", "sql": "create table u(a)", "allow_write": True})
        assert r["status"] != "Ok"  # not in MOLT_DB_WRITE
        cmdline = open(f"/proc/{p.pid}/cmdline", "rb").read().split(b"\0")
        assert cmdline[0].endswith(b"molt_worker"), cmdline  # exec'd, not a child of sh
        assert str(db).encode() not in b" ".join(cmdline)
        p.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert c.call("ping")["status"] == "Ok"
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "reloaded" in p.stderr.read().decode()
    assert sqlite3.connect(db).execute("select count(*) from t").fetchone() == (3,)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_systemd_unit_verifies(tmp_path):
    unit = open(os.path.join(EXAMPLES, "systemd", "molt-worker.service")).read()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "RuntimeDirectory=molt"):
        assert line in unit.splitlines(), line
    (tmp_path / "molt-worker.service").write_text(
        unit.replace("/usr/local/bin/molt_worker", WORKER_BIN))
    r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "molt-worker.service")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "molt-worker.service" not in r.stderr, r.stderr


def test_help_names_the_new_settings_and_signals():
    out = subprocess.run([WORKER_BIN, "--help"], capture_output=True, text=True,
                         timeout=10).stdout
    for needle in ("--metrics-allow-remote", "--log-format", "json", "MOLT_WORKER_MAX_INFLIGHT",
                   "SIGHUP"):
        assert needle in out, needle


def test_reload_never_logs_a_password(tmp_path):
    """A DSN changed in the file is reported without its text; a file whose
    DSN does not parse fails the reload without quoting it."""
    conf = tmp_path / "w.conf"
    conf.write_text("[db default]\ndsn = postgresql://app:OLD-PASS-1@127.0.0.1:1/app\n")
    with Worker({}, "--config", str(conf), "--log-format", "text", stdio=False) as w:
        assert w.conn.call("ping")["status"] == "Ok"
        conf.write_text("[db default]\ndsn = postgresql://app:NEW-PASS-2@127.0.0.1:1/app\n")
        w.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        conf.write_text("[db default]\ndsn = postgresql://app:BAD-PASS-3@[::1/app?sslmode=x\n")
        w.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert w.conn.call("ping")["status"] == "Ok"
    err = w.stderr
    assert "alias default: dsn changes only at a restart" in err
    assert "reload failed" in err
    for secret in ("OLD-PASS-1", "NEW-PASS-2", "BAD-PASS-3"):
        assert secret not in err, err
