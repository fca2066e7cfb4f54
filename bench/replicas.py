"""Reads over a primary and two streaming replicas through one replica-aware
worker alias, against one server with the same total connections, in the
same run; and the routing overhead per request against a single-alias
worker on the same server.

    bash scripts/with_pg.sh bash scripts/with_pg_replicas.sh \\
        .venv/bin/python bench/replicas.py [--quick] [--out bench/results/replicas.json]

1. spread: a CPU-bound read (a count over 200 000 rows) from 24 requests in
   flight for a fixed time. "one server": --db main=PRIMARY with
   max_conns=6. "primary + 2 replicas": --db-replica twice,
   primary_serves_reads, max_conns=2 on each (6 in all). Rounds alternate.
   Reported: queries/s, and the servers' CPU per query (user+sys of every
   process of the three clusters, from /proc). On a machine whose cores the
   three servers share, the ratio says what routing costs or gains there,
   not what separate machines would give.
2. overhead: one request at a time, `select $1::int8`, through a worker
   with --db main=REPLICA1 against one with --db main=PRIMARY
   --db-replica main=REPLICA1 (every read routed to that replica, checks
   running): the median of each round's median latency, the worker's CPU
   per request (every thread's schedstat), and their ratios. Latency on a
   shared machine is noisy; the worker's CPU is the steadier measure of
   what routing adds.
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from molt_db_adapter import AsyncMoltClient, MoltClient  # noqa: E402

WORKER = os.environ.get("MOLT_WORKER_BIN") or os.path.join(HERE, "..", "build", "molt_worker")
P = os.environ["MOLT_TEST_DSN_APP"]
R = [os.environ["MOLT_TEST_REPLICA1_DSN_APP"], os.environ["MOLT_TEST_REPLICA2_DSN_APP"]]
DATA = [os.environ["MOLT_TEST_PGDATA"], os.environ["MOLT_TEST_REPLICA1_PGDATA"],
        os.environ["MOLT_TEST_REPLICA2_PGDATA"]]
SPREAD_SQL = "select count(*) from bench_replicas where v % $1 = 0"


def setup():
    import psycopg
    with psycopg.connect(os.environ["MOLT_TEST_DSN"], autocommit=True) as con:
        con.execute("drop table if exists bench_replicas")
        con.execute("create table bench_replicas (id int primary key, v int)")
        con.execute("insert into bench_replicas select g, g * 7 from generate_series(1, 200000) g")
        con.execute("analyze bench_replicas")
        con.execute("grant select on bench_replicas to molt_app")
        lsn = con.execute("select pg_current_wal_insert_lsn()").fetchone()[0]
    for dsn in R:  # the replicas have the table before anything is measured
        with psycopg.connect(dsn.replace("molt_app", "molt"), autocommit=True) as con:
            while con.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0] is not True:
                time.sleep(0.05)


def cluster_cpu_seconds():
    """user+sys of every process of the three clusters (postmasters and
    their children), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    masters = set()
    for d in DATA:
        try:
            with open(os.path.join(d, "postmaster.pid")) as f:
                masters.add(int(f.readline()))
        except (OSError, ValueError):
            pass
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
        if int(pid) in masters or ppid in masters:
            total += utime + stime
    return total / tick


def spread_cmd(replicated):
    cmd = [WORKER, "--stdio", "--db", f"main={P}"]
    if replicated:
        cmd += ["--db-replica", f"main={R[0]}", "--db-replica", f"main={R[1]}",
                "--pool", "main:primary_serves_reads=true", "--pool", "main:max_conns=2"]
    else:
        cmd += ["--pool", "main:max_conns=6"]
    return cmd


async def spread_round(replicated, seconds, inflight=24):
    async with AsyncMoltClient(spread_cmd(replicated), db_alias="main") as c:
        if replicated:  # measured once the replicas passed their first checks
            while not all(s["healthy"] for s in (await c.stats())["replicas"]["main"]):
                await asyncio.sleep(0.05)
        for _ in range(6):
            await c.query(SPREAD_SQL, [7])
        done = 0
        stop = time.monotonic() + seconds

        async def loop(k):
            nonlocal done
            while time.monotonic() < stop:
                r = await c.query(SPREAD_SQL, [k % 13 + 2])
                assert r.rows[0][0] > 0
                done += 1
        cpu0, t0 = cluster_cpu_seconds(), time.monotonic()
        await asyncio.gather(*(loop(k) for k in range(inflight)))
        wall, cpu = time.monotonic() - t0, cluster_cpu_seconds() - cpu0
        per_server = None
        if replicated:
            per_server = {s["server"]: s["requests"] for s in (await c.stats())["replicas"]["main"]}
    return {"qps": done / wall, "server_cpu_us_per_query": cpu / done * 1e6, "per_server": per_server}


def worker_cpu_ns(pid):
    """CPU time of every thread of the worker (schedstat: nanoseconds)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def overhead_round(replicated, n):
    """(median latency us, worker CPU ns per request) of n requests one at
    a time."""
    cmd = [WORKER, "--stdio", "--db", f"main={P if replicated else R[0]}"]
    if replicated:
        cmd += ["--db-replica", f"main={R[0]}"]
    lat = []
    with MoltClient(cmd, db_alias="main") as c:
        if replicated:
            while not all(s["healthy"] for s in c.stats()["replicas"]["main"]):
                time.sleep(0.05)
        for i in range(200):
            c.query("select $1::int8", [i])
        pid = c.ping()["pid"]
        cpu0 = worker_cpu_ns(pid)
        for i in range(n):
            t0 = time.perf_counter_ns()
            r = c.query("select $1::int8", [i])
            lat.append(time.perf_counter_ns() - t0)
            assert r.rows[0][0] == i
        cpu = worker_cpu_ns(pid) - cpu0
        if replicated:
            s = {x["server"]: x["requests"] for x in c.stats()["replicas"]["main"]}
            assert s["main"] == 0, s  # every read went to the replica
    return statistics.median(lat) / 1000, cpu / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "replicas.json"))
    a = ap.parse_args()
    rounds, seconds, n = (3, 2.0, 1000) if a.quick else (5, 5.0, 5000)
    setup()
    spread = {"one": [], "replicas": []}
    for i in range(rounds):
        for replicated in ((False, True) if i % 2 == 0 else (True, False)):
            spread["replicas" if replicated else "one"].append(asyncio.run(spread_round(replicated, seconds)))
    over = {"single": [], "routed": []}
    for i in range(rounds):
        for replicated in ((False, True) if i % 2 == 0 else (True, False)):
            over["routed" if replicated else "single"].append(overhead_round(replicated, n))
    med = lambda xs: statistics.median(xs)  # noqa: E731
    out = {
        "rounds": rounds, "seconds": seconds, "queries_per_overhead_round": n,
        "cpus": os.cpu_count(),
        "one_server": {"qps": med([r["qps"] for r in spread["one"]]),
                       "server_cpu_us_per_query": med([r["server_cpu_us_per_query"] for r in spread["one"]])},
        "primary_and_2_replicas": {
            "qps": med([r["qps"] for r in spread["replicas"]]),
            "server_cpu_us_per_query": med([r["server_cpu_us_per_query"] for r in spread["replicas"]]),
            "requests_per_server_last_round": spread["replicas"][-1]["per_server"]},
        "overhead": {"single_alias_median_us": med([x[0] for x in over["single"]]),
                     "routed_median_us": med([x[0] for x in over["routed"]]),
                     "single_alias_worker_cpu_ns_per_request": med([x[1] for x in over["single"]]),
                     "routed_worker_cpu_ns_per_request": med([x[1] for x in over["routed"]])},
    }
    out["spread_ratio"] = out["primary_and_2_replicas"]["qps"] / out["one_server"]["qps"]
    o = out["overhead"]
    o["latency_ratio"] = o["routed_median_us"] / o["single_alias_median_us"]
    o["worker_cpu_ratio"] = (o["routed_worker_cpu_ns_per_request"]
                             / o["single_alias_worker_cpu_ns_per_request"])
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
