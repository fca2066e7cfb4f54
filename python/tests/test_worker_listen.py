"""The listen entry against a real worker and a real PostgreSQL: notes
delivered with channel, payload and pid; one listening connection per alias
shared by all listeners; hostile channel names; the per-session and
per-worker caps; a client that does not read; a server restart."""
import os
import subprocess
import time

import msgpack
import pytest

from worker_client import Worker, WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
PGCTL = os.environ.get("MOLT_TEST_PGCTL")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)"),
]


def sanitized(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def part(resp):
    assert resp["status"] == "Ok" and resp.get("more"), resp
    return msgpack.unpackb(resp["payload"], raw=False)


def start_listen(conn, channels, **extra):
    """Sends a listen request and waits for its "listening" part."""
    rid = conn.request("listen", {"channels": channels}, **extra)
    resp = conn.recv(timeout=15)
    assert resp["request_id"] == rid, resp
    assert part(resp) == {"kind": "listening"}
    return rid


def next_part(conn, rid, timeout=10):
    resp = conn.recv(timeout=timeout)
    assert resp["request_id"] == rid, resp
    return part(resp)


def stop_listen(conn, rid):
    conn.request("cancel", {"request_id": rid})
    finals = {}
    while len(finals) < 2:
        r = conn.recv(timeout=10)
        if not r.get("more"):
            finals[r["request_id"]] = r
    assert finals[rid]["status"] == "Cancelled", finals


def listening_backends(pg):
    return pg.execute("select count(*) from pg_stat_activity where query like 'LISTEN %' "
                      "or query like 'UNLISTEN %'").fetchone()[0]


def test_note_carries_channel_payload_and_pid(pg):
    with Worker({"default": DSN}) as w:
        c = w.conn
        rid = start_listen(c, ["jobs", "Mixed Case"])
        pid = pg.info.backend_pid
        pg.execute("select pg_notify('jobs', 'hello'), pg_notify('other', 'not for us')")
        pg.execute("""NOTIFY "Mixed Case", 'é ünïcode'""")
        assert next_part(c, rid) == {"kind": "note", "channel": "jobs", "payload": "hello",
                                     "pid": pid}
        assert next_part(c, rid) == {"kind": "note", "channel": "Mixed Case",
                                     "payload": "é ünïcode", "pid": pid}
        # unquoted NOTIFY folds to lower case: not the listener's "Mixed Case"
        pg.execute("NOTIFY jobs")
        assert next_part(c, rid) == {"kind": "note", "channel": "jobs", "payload": "",
                                     "pid": pid}
        stop_listen(c, rid)
        # the last listener left: the listening connection is closed
        deadline = time.monotonic() + 5
        while listening_backends(pg):
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_many_listeners_share_one_connection(pg):
    with Worker({"default": DSN}, stdio=False) as w:
        conns = [w.connect() for _ in range(5)]
        rids = {}
        for k, c in enumerate(conns):
            for j in range(4):
                chans = [f"ch{j}", f"only{k}_{j}"]
                rids[(k, j)] = (c, start_listen(c, chans), chans)
        assert listening_backends(pg) == 1
        pg.execute("select pg_notify('ch' || j, 'shared ' || j), "
                   "pg_notify('only' || k || '_' || j, 'own ' || k || j) "
                   "from generate_series(0, 3) j, generate_series(0, 4) k")
        for k, c in enumerate(conns):
            got = {}
            while sum(len(v) for v in got.values()) < 4 * 2:
                r = c.recv(timeout=10)
                got.setdefault(r["request_id"], []).append(part(r)["payload"])
            for j in range(4):
                rid = rids[(k, j)][1]
                # the server folds equal notes of one transaction into one
                assert sorted(got[rid]) == [f"own {k}{j}", f"shared {j}"]
        for c, rid, _ in rids.values():
            c.request("cancel", {"request_id": rid})
        for c in conns:
            for _ in range(8):
                assert c.recv(timeout=10)["status"] in ("Ok", "Cancelled")


def test_hostile_channel_names_stay_names(pg):
    pg.execute("drop table if exists listen_victim")
    pg.execute("create table listen_victim (id int)")
    pg.execute("insert into listen_victim values (1)")
    hostile = ['x"; drop table listen_victim; --', "y'); drop table listen_victim; --",
               'a""b', "$$; drop table listen_victim; $$"]
    with Worker({"default": DSN}) as w:
        c = w.conn
        rid = start_listen(c, hostile)
        for name in hostile:
            pg.execute("select pg_notify(%s, 'p')", (name,))
            assert next_part(c, rid)["channel"] == name
        stop_listen(c, rid)
        bad = [([""], "channels[0] is empty"), (["a\x00b"], "channels[0] holds a NUL byte"),
               (["x" * 64], "channels[0] is longer than 63 bytes"),
               (["a", "a"], "channels[1] is given twice"), ([7], "channels[0] must be a str"),
               ([], "channels must be a non-empty array")]
        for chans, text in bad:
            r = c.call("listen", {"channels": chans})
            assert r["status"] == "InvalidInput" and text in r["error"], r
        assert c.call("listen", {"channels": ["x" * 63]}, timeout_ms=300)["status"] == "Timeout"
    assert pg.execute("select count(*) from listen_victim").fetchone()[0] == 1


def test_sqlite_says_not_supported(tmp_path):
    with Worker({"default": f"sqlite:{tmp_path}/l.db"}) as w:
        r = w.conn.call("listen", {"channels": ["a"]})
        assert r["status"] == "InvalidInput", r
        assert "listen is not supported on SQLite" in r["error"]


def test_caps_per_session_and_per_worker(pg):
    """Channels are capped per connection, listen requests per connection
    at its share of max_listeners (an eighth), and listeners in the worker:
    a few connections cannot take every listener of the worker."""
    with Worker({"default": DSN}, "--max-listen-channels", "3", "--max-listeners", "16",
                stdio=False) as w:
        a, b = w.connect(), w.connect()
        r = a.call("listen", {"channels": ["c1", "c2", "c3", "c4"]})
        assert r["status"] == "InvalidInput" and "max_listen_channels" in r["error"], r
        ra = start_listen(a, ["c1", "c2"])
        r = a.call("listen", {"channels": ["c3", "c4"]})
        assert r["status"] == "Busy" and "max_listen_channels" in r["error"], r
        start_listen(a, ["c3"])
        start_listen(b, ["b1"])
        start_listen(b, ["b2"])
        r = b.call("listen", {"channels": ["b3"]})
        assert r["status"] == "Busy" and "share of max_listeners (16 / 8)" in r["error"], r
        others = [w.connect() for _ in range(7)]
        for i, o in enumerate(others[:6]):
            start_listen(o, [f"o{i}a"])
            start_listen(o, [f"o{i}b"])
        r = others[6].call("listen", {"channels": ["late"]})
        assert r["status"] == "Busy" and "too many listeners in the worker" in r["error"], r
        # the listeners already there are unaffected
        pg.execute("select pg_notify('c1', 'still here')")
        assert next_part(a, ra)["payload"] == "still here"


def test_a_client_that_does_not_read_loses_notes_not_memory(pg):
    """The slow listener keeps listen_queue_notes notes beyond what the
    session may buffer, drops the rest, and is told how many; a listener on
    another connection gets every note."""
    n, size = 3000, 7000
    with Worker({"default": DSN}, "--listen-queue-notes", "20", stdio=False) as w:
        slow, fast = w.connect(), w.connect()
        rs = start_listen(slow, ["flood"])
        rf = start_listen(fast, ["flood"])
        # in batches the reading client takes in full (each below the 8 MiB a
        # session may have unread), while the other one reads nothing
        for b in range(0, n, 500):
            pg.execute("select pg_notify('flood', lpad(i::text, %s, '.')) "
                       "from generate_series(%s::int, %s::int) i", (size, b + 1, b + 500))
            for i in range(b + 1, b + 501):
                assert int(next_part(fast, rf)["payload"].lstrip(".")) == i
        rss_kib = int(open(f"/proc/{w.proc.pid}/status").read().split("VmRSS:")[1].split()[0])
        got, dropped = [], 0
        while len(got) + dropped < n:
            p = next_part(slow, rs)
            if p["kind"] == "dropped":
                dropped += p["count"]
            else:
                got.append(int(p["payload"].lstrip(".")))
        assert dropped > 0 and got == list(range(1, len(got) + 1)), (len(got), dropped)
        # 21 MB were notified: the slow session held about 8 MiB plus 20
        # notes (ASan's quarantine keeps freed memory: RSS says nothing there)
        if not sanitized(WORKER_BIN):
            assert rss_kib < 64 * 1024, rss_kib
        pg.execute("select pg_notify('flood', 'after')")
        assert next_part(slow, rs)["payload"] == "after"
        assert next_part(fast, rf)["payload"] == "after"
        stats = msgpack.unpackb(fast.call("stats")["payload"], raw=False)["worker"]
        assert stats["listeners"] == 2 and stats["notes_dropped"] == dropped
        assert stats["notes"] == n + len(got) + 2


def test_notes_held_for_clients_that_do_not_read_are_bounded_in_the_worker(pg):
    """listen_queue_bytes bounds the notes every listener of the worker
    holds together, however many listeners do not read: past it notes are
    dropped, counted and reported as past listen_queue_notes."""
    n, size = 2500, 7000
    with Worker({"default": DSN}, "--listen-queue-notes", "1000",
                "--listen-queue-bytes", "200000", stdio=False) as w:
        slow = w.connect()
        rs = start_listen(slow, ["flood2"])
        for b in range(0, n, 500):
            pg.execute("select pg_notify('flood2', lpad(i::text, %s, '.')) "
                       "from generate_series(%s::int, %s::int) i", (size, b + 1, b + 500))
        pg.execute("select pg_notify('flood2', 'after')")
        got, dropped, after = [], 0, False
        # "after" may come before the report of what was dropped: queued
        # notes go out first, then the count
        while not after or len(got) + dropped < n:
            p = next_part(slow, rs)
            if p["kind"] == "dropped":
                dropped += p["count"]
            elif p["payload"] == "after":
                after = True
            else:
                got.append(int(p["payload"].lstrip(".")))
        assert got == list(range(1, len(got) + 1)) and len(got) + dropped == n
        # the 8 MiB the session may have unread, then at most 200 kB queued
        # (1,000 notes, 7 MB, with listen_queue_notes alone)
        assert len(got) * size < 8 * 1024 * 1024 + 200_000 + 4 * size, (len(got), dropped)


@pytest.mark.skipif(not PGCTL, reason="MOLT_TEST_PGCTL is not set (run under scripts/with_pg.sh)")
def test_notes_arrive_after_a_server_restart():
    psycopg = pytest.importorskip("psycopg")
    with Worker({"default": DSN}, "--pool", "default:reconnect_max_ms=200") as w:
        c = w.conn
        rid = start_listen(c, ["after_restart"])
        subprocess.run([PGCTL, "restart", "-m", "fast"], check=True, capture_output=True,
                       timeout=60)
        assert next_part(c, rid, timeout=30) == {"kind": "reconnected"}
        with psycopg.connect(DSN, autocommit=True) as pg:
            pg.execute("select pg_notify('after_restart', 'back')")
            p = next_part(c, rid)
            assert p["payload"] == "back" and p["pid"] == pg.info.backend_pid
        stop_listen(c, rid)
