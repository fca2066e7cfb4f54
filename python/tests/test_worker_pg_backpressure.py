"""Read backpressure on PostgreSQL: a client that reads a streamed result
slowly does not make the worker buffer it (the worker stops reading the
server's connection above 8 MiB queued for the client, and reads on below
2 MiB), and cancel, timeout and disconnect still stop the server's query
while the stream is paused."""
import os
import time

import msgpack
import pytest

from worker_client import Worker, decode, WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)"),
]


def sanitized(binary):
    """ASan keeps freed memory in quarantine (256 MB): RSS says nothing there."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


# about 230 MB of msgpack parts; against the ASan worker, whose RSS is not
# checked, 57 MB: still far past the 8 MiB that pause the query (and each
# row costs it several times the CPU)
ROWS = 500_000 if os.path.exists(WORKER_BIN) and sanitized(WORKER_BIN) else 2_000_000
STREAM_SQL = ("select g, repeat('x', 100) as pad from generate_series(1, %d) g /* %s */")
# The worker may hold its 8 MiB write queue, one batch being encoded, the
# receive buffer and allocator slack; a worker that buffers the stream
# grows by well over 100 MB in the first second.
GROWTH_LIMIT_KB = 48 * 1024


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def server_state(pg, tag):
    """(state, wait_event) of the backend running the query tagged `tag`, or None."""
    return pg.execute("select state, wait_event from pg_stat_activity where query like %s "
                      "and pid <> pg_backend_pid()", (f"%/* {tag} */%",)).fetchone()


def wait_not_active(pg, tag, within):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        st = server_state(pg, tag)
        if st is None or st[0] != "active":
            return True
        time.sleep(0.02)
    return False


def start_stream(c, tag, timeout_ms=120000):
    return c.request("db_query", {"sql": STREAM_SQL % (ROWS, tag), "stream": True,
                                  "batch_rows": 1000, "result_format": "msgpack",
                                  "max_rows": ROWS + 1}, timeout_ms=timeout_ms)


def wait_blocked(pg, tag, within=10.0):
    """The server's backend waits to send to the worker (the worker paused)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        st = server_state(pg, tag)
        if st == ("active", "ClientWrite"):
            return True
        time.sleep(0.05)
    return False


def test_slow_reader_keeps_worker_memory_bounded(pg):
    with Worker({"default": DSN}) as wk:
        c = wk.conn
        assert decode(c.query("select 1"))["rows"] == [[1]]  # pool connected
        base = rss_kb(wk.proc.pid)
        rid = start_stream(c, "bp-slow")
        # Not reading at all: the worker fills its queue, then the server
        # must be left waiting in its send.
        assert wait_blocked(pg, "bp-slow"), server_state(pg, "bp-slow")
        peak = rss_kb(wk.proc.pid) - base
        # Reading slowly: a frame every few ms for a while...
        frames = rows = 0
        slow_until = time.monotonic() + 3.0
        while True:
            r = c.recv(timeout=60)
            assert r["request_id"] == rid
            if not r.get("more"):
                break
            frames += 1
            if frames > 1:
                rows += len(msgpack.unpackb(r["payload"])["rows"])
            if time.monotonic() < slow_until:
                time.sleep(0.004)
            if frames % 50 == 0:
                peak = max(peak, rss_kb(wk.proc.pid) - base)
        # ... then at full speed: everything arrives, in full, in order.
        assert r["status"] == "Ok", r
        assert decode(r) == {"row_count": ROWS, "truncated": False}
        assert rows == ROWS
        if not sanitized(WORKER_BIN):
            assert peak < GROWTH_LIMIT_KB, f"worker grew by {peak} kB for a slow reader"
        assert decode(c.query("select 2"))["rows"] == [[2]]


def drain_until_final(c, rid):
    while True:
        r = c.recv(timeout=30)
        if r["request_id"] == rid and not r.get("more"):
            return r


def assert_pool_clean(c, within=3.0):
    """The cancelled stream's connection drains (the rest of the rows are
    read and dropped) and goes back idle, or is closed, within a bound."""
    deadline = time.monotonic() + within
    while True:
        st = decode(c.call("stats"))["aliases"]["default"]
        if st["in_use"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert st["in_use"] == 0 and st["waiters"] == 0, st
    assert decode(c.query("select 3"))["rows"] == [[3]]


def test_cancel_while_paused_stops_the_server_query(pg):
    with Worker({"default": DSN}) as wk:
        c = wk.conn
        rid = start_stream(c, "bp-cancel")
        assert wait_blocked(pg, "bp-cancel")
        cid = c.request("cancel", {"request_id": rid})
        # the cancel must get through although the client reads nothing yet
        assert wait_not_active(pg, "bp-cancel", within=3.0), server_state(pg, "bp-cancel")
        got = {}
        while len(got) < 2:
            r = c.recv(timeout=30)
            if not r.get("more"):
                got[r["request_id"]] = r
        assert got[rid]["status"] == "Cancelled" and decode(got[cid]) == {"found": True}
        assert_pool_clean(c)


def test_timeout_while_paused_stops_the_server_query(pg):
    with Worker({"default": DSN}) as wk:
        c = wk.conn
        rid = start_stream(c, "bp-timeout", timeout_ms=1500)
        assert wait_blocked(pg, "bp-timeout")
        t0 = time.monotonic()
        assert wait_not_active(pg, "bp-timeout", within=4.0), server_state(pg, "bp-timeout")
        assert time.monotonic() - t0 < 4.0
        assert drain_until_final(c, rid)["status"] == "Timeout"
        assert_pool_clean(c)


def test_disconnect_while_paused_stops_the_server_query(pg):
    with Worker({"default": DSN}, stdio=False) as wk:
        c1 = wk.connect()
        start_stream(c1, "bp-disc")
        assert wait_blocked(pg, "bp-disc")
        c1.sock.close()
        assert wait_not_active(pg, "bp-disc", within=3.0), server_state(pg, "bp-disc")
        assert_pool_clean(wk.conn)
