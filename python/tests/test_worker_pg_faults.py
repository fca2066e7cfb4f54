"""molt_worker on PostgreSQL under faults and load: many clients at once, the
worker SIGKILLed mid-query, and the database restarted under it."""
import os
import signal
import subprocess
import time

import pytest

from worker_client import Worker, decode, WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
PGCTL = os.environ.get("MOLT_TEST_PGCTL")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)"),
]


def active(pg, marker):
    return pg.execute("select pid, state from pg_stat_activity where query like %s "
                      "and pid <> pg_backend_pid()", (f"%{marker}%",)).fetchall()


def test_1000_requests_from_10_connections(pg):
    with Worker({"default": DSN}, stdio=False) as w:
        conns = [w.connect() for _ in range(10)]
        for k, c in enumerate(conns):
            for i in range(100):
                c.request("db_query", {"sql": "select $1::int8 * 2, $2::text", "params": {
                    "mode": "positional", "values": [i, f"c{k}"]},
                    "result_format": "msgpack"}, rid=i + 1)
        for k, c in enumerate(conns):
            seen = set()
            for _ in range(100):
                r = c.recv(timeout=30)
                assert r["status"] == "Ok", r
                i = r["request_id"] - 1
                assert decode(r)["rows"] == [[2 * i, f"c{k}"]]  # matched, per connection
                seen.add(r["request_id"])
            assert seen == set(range(1, 101))


def test_sigkilled_worker_leaves_no_busy_backend(pg):
    """The worker's sessions ask the server to check the client socket while a
    query runs (client_connection_check_interval), so a worker that dies
    without a word does not leave its queries running to their end."""
    marker = "w6_sigkill_marker"
    w = Worker({"default": DSN}).start()
    try:
        w.conn.request("db_query", {"sql": f"select pg_sleep(30) /* {marker} */"})
        deadline = time.monotonic() + 10
        while not any(s == "active" for _, s in active(pg, marker)):
            assert time.monotonic() < deadline, "the query never started"
            time.sleep(0.05)
        w.proc.send_signal(signal.SIGKILL)
        w.proc.wait(10)
        t0 = time.monotonic()
        while active(pg, marker):
            assert time.monotonic() - t0 < 5, active(pg, marker)
            time.sleep(0.1)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
        w.stop()


@pytest.mark.skipif(not PGCTL, reason="MOLT_TEST_PGCTL is not set (run under scripts/with_pg.sh)")
def test_database_restart_recovers_without_a_worker_restart():
    with Worker({"default": DSN}) as w:
        c = w.conn
        assert decode(c.query("select 41 + 1"))["rows"] == [[42]]
        subprocess.run([PGCTL, "restart", "-m", "fast"], check=True, capture_output=True,
                       timeout=60)
        # the request that meets a dead connection may fail, clearly; the
        # pool then reconnects by itself
        statuses = []
        deadline = time.monotonic() + 20
        while True:
            r = c.query("select 6 * 7", timeout_ms=5000)
            statuses.append(r["status"])
            if r["status"] == "Ok":
                assert decode(r)["rows"] == [[42]]
                break
            assert r["status"] in ("InternalError", "DbError", "Busy"), r
            assert r.get("error"), r
            assert time.monotonic() < deadline, statuses
            time.sleep(0.2)
        assert len(statuses) <= 3, statuses
        # and it keeps working
        for i in range(20):
            assert decode(c.query("select $1::int4", {"mode": "positional",
                                                      "values": [i]}))["rows"] == [[i]]


def test_more_parameters_than_the_protocol_carries(pg):
    """The Bind message counts parameters in 16 bits: 70,000 must be refused
    before anything is sent, not wrapped around."""
    with Worker({"default": DSN}) as w:
        c = w.conn
        sql = "select " + " + ".join(f"${i + 1}::int4" for i in range(70_000))
        r = c.query(sql, {"mode": "positional", "values": [1] * 70_000}, timeout_ms=20000)
        assert r["status"] == "InvalidInput" and "65535" in r["error"], r
        assert decode(c.query("select 1"))["rows"] == [[1]]
