"""Shared helpers for the Python peers of bench/runner.py.

Every peer follows the contender contract in bench/contenders.md: it takes the
DSN and a duration or count on the command line, does its own short warm-up,
measures only the part that does the work, and prints ONE JSON line on stdout.
"""
import argparse
import asyncio
import json
import math
import os
import random
import sys
import time

PINGPONG_SQL_PG = "SELECT $1::int8"
PK_SQL_PG = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
BULK_SQL = "SELECT id, t, f, ts, b, i FROM bench_bulk"
# Fixed values every contender echoes / looks up after measuring, so that the
# runner can compare results across contenders.
PINGPONG_CHECK = [1, 1 << 40, -7]
PK_CHECK_AIDS = [1, 500000, 1000000]

# the write scenarios (many: executemany of an INSERT, copyin: COPY FROM
# STDIN): --rows rows of (id int8, t text, f float8) into a fresh unlogged
# table of the peer's own, then read back for the check
WRITE_ROWS = 100000
WRITE_COLUMNS = ["id", "t", "f"]


def write_table():
    return f"bench_write_{os.getpid()}"


def write_create_sql(table):
    return f"CREATE UNLOGGED TABLE {table} (id int8 NOT NULL, t text NOT NULL, f float8 NOT NULL)"


def write_insert_sql(table, placeholder="$"):
    ps = ", ".join(f"${k}" if placeholder == "$" else "%s" for k in (1, 2, 3))
    return f"INSERT INTO {table} (id, t, f) VALUES ({ps})"


def write_rows(n, start=1):
    return [(i, f"row-{i}", i * 0.25) for i in range(start, start + n)]


def write_check_sql(table):
    return f"SELECT count(*), sum(id), sum(f) FROM {table}"


def write_check(row):
    """The check of the write scenarios from the peer's read-back of
    write_check_sql: the same for every contender."""
    return {"rows": int(row[0]), "sum_id": int(row[1]), "sum_f": float(row[2])}


def write_expected(n):
    return {"rows": n, "sum_id": n * (n + 1) // 2, "sum_f": math.fsum(i * 0.25 for i in range(1, n + 1))}


def parser(modes):
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=modes)
    p.add_argument("--dsn", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--inflight", type=int, default=64)
    p.add_argument("--max-aid", type=int, default=1000000)
    p.add_argument("--limit", type=int, default=0, help="bulk: LIMIT n (0: all rows)")
    p.add_argument("--warmup", type=float, default=0.3, help="seconds of in-process warm-up")
    p.add_argument("--rows", type=int, default=WRITE_ROWS, help="many, copyin: rows written")
    return p


def bulk_sql(limit):
    return BULK_SQL + (f" ORDER BY id LIMIT {int(limit)}" if limit else "")


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(math.ceil(q * len(sorted_vals))) - 1))
    return sorted_vals[k]


def latency_summary(lat_ns):
    lat_ns.sort()
    return {"p50": pct(lat_ns, 0.50) / 1000.0, "p99": pct(lat_ns, 0.99) / 1000.0,
            "n": len(lat_ns)}


class Meter:
    """Wall and CPU (user+sys of this process, all threads) of the measured part."""

    def __enter__(self):
        self.w0 = time.perf_counter()
        self.c0 = time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


def pingpong(a, q, meter):
    """One call at a time: q(x) returns the echo of x (x random in
    1..1000000); a.warmup seconds unmeasured, then a.seconds inside `meter`.
    Returns (ops, per-call latencies in ns, wrong echoes)."""
    r = rng()
    end = time.perf_counter() + a.warmup
    while time.perf_counter() < end:
        q(r.randint(1, 1000000))
    lat, bad, ops = [], 0, 0
    pc = time.perf_counter_ns
    with meter:
        end = time.perf_counter() + a.seconds
        while time.perf_counter() < end:
            x = r.randint(1, 1000000)
            t0 = pc()
            v = q(x)
            lat.append(pc() - t0)
            bad += v != x
            ops += 1
    return ops, lat, bad


async def apingpong(a, q, meter):
    """pingpong() for a coroutine q."""
    r = rng()
    end = time.perf_counter() + a.warmup
    while time.perf_counter() < end:
        await q(r.randint(1, 1000000))
    lat, bad, ops = [], 0, 0
    pc = time.perf_counter_ns
    with meter:
        end = time.perf_counter() + a.seconds
        while time.perf_counter() < end:
            x = r.randint(1, 1000000)
            t0 = pc()
            v = await q(x)
            lat.append(pc() - t0)
            bad += v != x
            ops += 1
    return ops, lat, bad


async def inflight(a, call, meter):
    """The pk shape: --inflight asyncio tasks, each awaiting call(aid) in a
    loop (aid random in 1..--max-aid); a.warmup seconds unmeasured, then
    a.seconds inside `meter`. Returns (ops, per-call latencies in ns)."""
    r = rng()
    state = {"stop": False, "ops": 0}
    lat = []
    pc = time.perf_counter_ns

    async def worker(record):
        while not state["stop"]:
            aid = r.randint(1, a.max_aid)
            t0 = pc()
            await call(aid)
            if record:
                lat.append(pc() - t0)
                state["ops"] += 1

    async def phase(seconds, record):
        state["stop"] = False
        tasks = [asyncio.create_task(worker(record)) for _ in range(a.inflight)]
        await asyncio.sleep(seconds)
        state["stop"] = True
        await asyncio.gather(*tasks)

    await phase(a.warmup, False)
    with meter:
        await phase(a.seconds, True)
    return state["ops"], lat


def emit(**fields):
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def rng():
    return random.Random(12345)


_EPOCH = None


def ts_us(dt):
    global _EPOCH
    if _EPOCH is None:
        import datetime
        _EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    d = dt - _EPOCH
    return (d.days * 86400 + d.seconds) * 1000000 + d.microseconds


# timestamps are summed as microseconds since this base so the sum fits in int64
TS_BASE_US = 1704067200 * 1000000  # 2024-01-01 00:00:00 UTC


def rows_check(rows):
    """Order-independent checksum of (id, t, f, ts, b, i) rows as Python objects."""
    n = sum_id = sum_i = n_true = sum_len = sum_ts = 0
    fs = []
    for r in rows:
        n += 1
        sum_id += r[0]
        sum_len += len(r[1])
        fs.append(r[2])
        sum_ts += ts_us(r[3]) - TS_BASE_US
        n_true += bool(r[4])
        sum_i += r[5]
    return {"rows": n, "sum_id": sum_id, "sum_len_t": sum_len, "sum_f": math.fsum(fs),
            "sum_ts_us": sum_ts, "n_true": n_true, "sum_i": sum_i}


def arrow_check(tbl):
    """rows_check for a pyarrow.Table with the same columns (computed by Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    ts = tbl.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return {"rows": tbl.num_rows,
            "sum_id": pc.sum(tbl.column("id")).as_py(),
            "sum_len_t": pc.sum(pc.utf8_length(tbl.column("t"))).as_py(),
            "sum_f": pc.sum(tbl.column("f")).as_py(),
            "sum_ts_us": pc.sum(pc.subtract_checked(ts, TS_BASE_US)).as_py(),
            "n_true": pc.sum(tbl.column("b").cast(pa.int64())).as_py(),
            "sum_i": pc.sum(tbl.column("i").cast(pa.int64())).as_py()}


def privileged_role_flags(worker, alias="default"):
    """The worker flags that let it serve the bench's superuser DSN (the
    worker refuses such a role by default); none for a worker built before
    the setting existed (--baseline runs older binaries)."""
    import subprocess
    out = subprocess.run([worker, "--help"], capture_output=True, text=True).stdout
    return ["--pool", f"{alias}:allow_privileged_role=true"] if "allow_privileged_role" in out else []
