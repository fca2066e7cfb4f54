"""molt_worker behind PgBouncer in transaction mode (MOLT_TEST_BOUNCER_DSN from
scripts/with_pg.sh: PgBouncer 1.18 with 2 server connections). The worker's
unnamed and simple statement modes work there; the worker's default
client_check_ms is sent in the startup `options`, which PgBouncer refuses, and
the request says so at once."""
import os
import threading
import time

import pytest

from worker_client import Worker, decode, WORKER_BIN

DSN = os.environ.get("MOLT_TEST_BOUNCER_DSN")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not DSN, reason="MOLT_TEST_BOUNCER_DSN is not set (pgbouncer not installed?)"),
]


def test_refused_startup_parameter_is_named():
    with Worker({"default": DSN}, "--pool", "default:statement_mode=unnamed") as wk:
        t0 = time.monotonic()
        r = wk.conn.query("select 1", timeout_ms=1500)
        assert time.monotonic() - t0 < 1.0  # at the failed attempt, not the deadline
    assert r["status"] == "DbError", r
    assert r["sqlstate"][:2] == "08", r
    assert "unsupported startup parameter: options" in r["error"], r
    assert "behind PgBouncer set client_check_ms=0" in r["error"], r


@pytest.mark.parametrize("mode", ["unnamed", "simple"])
def test_modes_behind_pgbouncer(mode):
    """Two workers with 4 connections each over PgBouncer's 2 server
    connections: every answer is its own, errors stay with their request."""
    args = ["--pool", f"default:statement_mode={mode}", "--pool", "default:client_check_ms=0",
            "--pool", "default:max_conns=4"]
    with Worker({"default": DSN}, *args) as a, Worker({"default": DSN}, *args) as b:
        def run(wk, base, out):
            for i in range(150):
                n = base + i
                if mode == "unnamed":
                    r = wk.conn.query(f"select $1::int4 * 10 + {i % 7} as v{i % 7}",
                                      {"mode": "positional", "values": [n]}, result_format="json")
                else:
                    r = wk.conn.query(f"select {n} * 10 + {i % 7} as v{i % 7}", result_format="json")
                out.append((n, i, r))
        ra, rb = [], []
        ta = threading.Thread(target=run, args=(a, 0, ra))
        tb = threading.Thread(target=run, args=(b, 100000, rb))
        ta.start(), tb.start()
        ta.join(), tb.join()
        for n, i, r in ra + rb:
            assert decode(r)["rows"] == [[n * 10 + i % 7]], (n, r)
        for sql, state in [("selec 1", "42601"), ("select 1/0", "22012")]:
            r = a.conn.query(sql)
            assert r["status"] == "DbError" and r["sqlstate"] == state, r
        assert decode(a.conn.query("select 'still fine'"))["rows"] == [["still fine"]]
        st = decode(a.conn.call("stats"))["aliases"]["default"]
        # "selec 1" is refused by the worker's classifier: the pool sees one failure
        assert st["failed"] == 1 and st["in_use"] == 0, st
