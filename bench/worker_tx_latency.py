"""What a session-bound transaction costs through molt_worker: one request
at a time, raw IPC frames (no client library in the way), on PostgreSQL
and SQLite.

    bash scripts/with_pg.sh .venv/bin/python bench/worker_tx_latency.py \
        [--queries 2000] [--rounds 3] [--worker build/molt_worker]

Per backend, the median and p99 (medians over rounds) of, point and in_tx
interleaved query by query:
- point:    db_query `select v from bench_tx where id = $1` outside a
            transaction (PostgreSQL: BEGIN READ ONLY / query / ROLLBACK in
            one round trip);
- in_tx:    the same db_query with tx_id, inside one open transaction;
- tx_cycle: tx_begin + that db_query + tx_commit (three requests).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "tests"))

from worker_client import Worker, decode  # noqa: E402

SQL = "select v from bench_tx where id = $1"


def setup(conn):
    for sql in ["drop table if exists bench_tx",
                "create table bench_tx(id int primary key, v int)"]:
        assert conn.call("db_exec", {"sql": sql, "allow_write": True})["status"] == "Ok"
    r = conn.call("db_exec", {"allow_write": True, "statements": [
        {"sql": "insert into bench_tx values ($1, $2)",
         "params": {"mode": "positional", "values": [i, i * 3]}} for i in range(1, 1001)]})
    assert r["status"] == "Ok", r


def point(conn, key, tx=None):
    payload = {"sql": SQL, "params": {"mode": "positional", "values": [key]},
               "result_format": "msgpack"}
    if tx is not None:
        payload["tx_id"] = tx
    r = conn.call("db_query", payload)
    assert r["status"] == "Ok", r
    return r


def measure(fns, n):
    """Each fn n times, interleaved (the machine is shared: drift hits all
    alike); per fn the median and p99 in seconds."""
    lat = {name: [] for name in fns}
    for i in range(n):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(i % 1000 + 1)
            lat[name].append(time.perf_counter() - t0)
    out = {}
    for name, xs in lat.items():
        xs.sort()
        out[name] = (statistics.median(xs), xs[int(len(xs) * 0.99)])
    return out


def one_round(worker_bin, dsn, n):
    os.environ["MOLT_WORKER_BIN"] = worker_bin
    with Worker({"default": dsn}, "--allow-write", "default",
                "--tx-idle-timeout-ms", "60000", "--tx-max-ms", "3600000") as w:
        c = w.conn
        setup(c)
        for i in range(200):
            point(c, i % 1000 + 1)
        tx = decode(c.call("tx_begin", {}))["tx_id"]

        def cycle(k):
            t = decode(c.call("tx_begin", {}))["tx_id"]
            point(c, k, t)
            assert c.call("tx_commit", {"tx_id": t})["status"] == "Ok"
        out = measure({"point": lambda k: point(c, k),
                       "in_tx": lambda k: point(c, k, tx)}, n)
        assert c.call("tx_commit", {"tx_id": tx})["status"] == "Ok"
        out.update(measure({"tx_cycle": cycle}, n))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", default=os.path.join("build", "molt_worker"))
    a = ap.parse_args()
    backends = []
    if os.environ.get("MOLT_TEST_DSN"):
        backends.append(("postgresql", os.environ["MOLT_TEST_DSN"]))
    tmp = tempfile.mkdtemp(prefix="molt-txbench-")
    backends.append(("sqlite", f"sqlite://{tmp}/bench.db"))
    for name, dsn in backends:
        rounds = [one_round(os.path.abspath(a.worker), dsn, a.queries) for _ in range(a.rounds)]
        for kind in ("point", "in_tx", "tx_cycle"):
            med = statistics.median(r[kind][0] for r in rounds) * 1e6
            p99 = statistics.median(r[kind][1] for r in rounds) * 1e6
            print(f"{name:10} {kind:9} median {med:8.1f} us   p99 {p99:8.1f} us")


if __name__ == "__main__":
    main()
