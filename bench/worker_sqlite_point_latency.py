"""Point-query and single-row-update latency through molt_worker on a
SQLite file, one request at a time, for one or more worker binaries in
alternation (the machine is shared: compare within one run). Shows what
the per-request work on a SQLite connection (query_only, the authorizer at
prepare) costs.

    .venv/bin/python bench/worker_sqlite_point_latency.py \
        [--rounds 5] [--queries 2000] LABEL=WORKER_BIN ...
"""
import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from molt_db_adapter import MoltClient  # noqa: E402


def setup(path):
    con = sqlite3.connect(path)
    con.execute("create table bench_point(id integer primary key, name text not null, qty int)")
    con.executemany("insert into bench_point values (?, ?, ?)",
                    ((i, f"item {i}", i % 97) for i in range(1, 10001)))
    con.commit()
    con.close()


def one_round(binary, path, n):
    cmd = [binary, "--stdio", "--db", f"default=sqlite://{path}",
           "--allow-write", "default", "--pool", "default:sqlite_conns=1"]
    read, write = [], []
    with MoltClient(cmd) as c:
        for i in range(200):  # warm: connection open, page cache
            c.query("select id, name, qty from bench_point where id = $1", [i + 1])
        for i in range(n):
            key = i * 7 % 10000 + 1
            t0 = time.perf_counter()
            r = c.query("select id, name, qty from bench_point where id = $1", [key])
            read.append(time.perf_counter() - t0)
            assert r.rows[0][0] == key
            if i % 4 == 0:
                t0 = time.perf_counter()
                c.execute("update bench_point set qty = qty + 1 where id = $1", [key])
                write.append(time.perf_counter() - t0)
    return statistics.median(read), statistics.median(write)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("workers", nargs="+", help="LABEL=PATH of a molt_worker")
    a = ap.parse_args()
    workers = [w.split("=", 1) for w in a.workers]
    med = {label: ([], []) for label, _ in workers}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        setup(path)
        for rnd in range(a.rounds):
            for label, binary in workers:  # alternate within each round
                r, w = one_round(binary, path, a.queries)
                med[label][0].append(r)
                med[label][1].append(w)
                print(f"round {rnd + 1} {label:>8}: db_query {r * 1e6:6.1f} us  "
                      f"db_exec {w * 1e6:6.1f} us", flush=True)
    print(f"\n{a.queries} point queries and {a.queries // 4} updates x {a.rounds} rounds, "
          f"medians of round medians:")
    for label, _ in workers:
        r, w = (statistics.median(x) for x in med[label])
        print(f"  {label:>8}: db_query {r * 1e6:6.1f} us  db_exec {w * 1e6:6.1f} us")


if __name__ == "__main__":
    main()
