"""Point-query latency through molt_worker on PostgreSQL, one request at a
time (so every round trip to the server shows), for one or more worker
binaries in alternation (the machine is shared: compare within one run).

    bash scripts/with_pg.sh .venv/bin/python bench/worker_point_latency.py \
        [--rounds 5] [--queries 2000] [--mode cached] LABEL=WORKER_BIN ...

Prints per binary the median and p99 of each round's latencies and, when
two binaries are given, the ratio of their medians of medians.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))

from molt_db_adapter import MoltClient  # noqa: E402
from _common import privileged_role_flags  # noqa: E402


def setup(dsn):
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("drop table if exists bench_point")
        con.execute("create table bench_point(id int primary key, name text not null, qty int)")
        con.execute("insert into bench_point select g, 'item ' || g, g % 97 "
                    "from generate_series(1, 10000) g")
        con.execute("analyze bench_point")


def one_round(binary, dsn, mode, n):
    cmd = [binary, "--stdio", "--db", f"default={dsn}", "--pool", f"default:statement_mode={mode}",
           *privileged_role_flags(binary)]
    lat = []

    def point(c, key):
        if mode == "simple":  # no parameters in simple mode: an int literal
            return c.query(f"select id, name, qty from bench_point where id = {int(key)}")
        return c.query("select id, name, qty from bench_point where id = $1", [key])

    with MoltClient(cmd) as c:
        for i in range(200):  # warm: connection, statement cache
            point(c, i % 10000 + 1)
        for i in range(n):
            key = i * 7 % 10000 + 1
            t0 = time.perf_counter()
            r = point(c, key)
            lat.append(time.perf_counter() - t0)
            assert r.rows[0][0] == key
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.99)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--mode", default="cached", choices=["cached", "unnamed", "simple"])
    ap.add_argument("workers", nargs="+", help="LABEL=PATH of a molt_worker")
    a = ap.parse_args()
    dsn = os.environ["MOLT_TEST_DSN"]
    setup(dsn)
    workers = [w.split("=", 1) for w in a.workers]
    med = {label: [] for label, _ in workers}
    p99 = {label: [] for label, _ in workers}
    for rnd in range(a.rounds):
        for label, path in workers:  # alternate within each round
            m, p = one_round(path, dsn, a.mode, a.queries)
            med[label].append(m)
            p99[label].append(p)
            print(f"round {rnd + 1} {label:>8}: median {m * 1e6:7.1f} us  p99 {p * 1e6:7.1f} us",
                  flush=True)
    print(f"\nmode {a.mode}, {a.queries} sequential point queries x {a.rounds} rounds "
          f"(msgpack, one in flight), medians of round medians:")
    for label, _ in workers:
        print(f"  {label:>8}: {statistics.median(med[label]) * 1e6:7.1f} us "
              f"(p99 {statistics.median(p99[label]) * 1e6:7.1f} us)")
    if len(workers) == 2:
        (la, _), (lb, _) = workers
        print(f"  {lb} / {la}: {statistics.median(med[lb]) / statistics.median(med[la]):.2f}x")


if __name__ == "__main__":
    main()
