#!/usr/bin/env python3
"""The benchmark runner behind `make bench` (bench/run.sh starts it).

It expects a running, tuned PostgreSQL (MOLT_TEST_DSN, MOLT_TEST_PGBIN from
scripts/with_pg.sh), prepares the data, runs every scenario with every
contender alternating (warm-up, then REPS repetitions with a rotating order),
measures each contender process with os.wait4 (CPU user+sys, peak RSS),
checks results for equality on a sample, and writes bench/results/latest.json.
bench/report.py turns that file into bench/README.md and the PNGs.

The contender contract is in bench/contenders.md.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "bench", "peers")
RESULTS = os.path.join(ROOT, "bench", "results")
PY = sys.executable
PGBIN = os.environ.get("MOLT_TEST_PGBIN", "/usr/lib/postgresql/15/bin")
MOLT_BIN = os.environ.get("MOLT_BENCH_BIN", os.path.join(ROOT, "build", "bench", "molt_bench"))
WORKER_BIN = os.environ.get("MOLT_WORKER_BIN", os.path.join(ROOT, "build", "molt_worker"))
BULK_ROWS = 1000000
PK_CHECK_AIDS = [1, 500000, 1000000]
PINGPONG_CHECK = [1, 1 << 40, -7]
NOT_YET = "not implemented yet"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def psql(dsn, sql, script=False):
    """One statement with -c, or a script (several transactions) on stdin."""
    args = [os.path.join(PGBIN, "psql"), "-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-d", dsn]
    out = subprocess.run(args + ([] if script else ["-c", sql]), input=sql if script else None,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr.strip()[-500:]}")
    return out.stdout.strip()


# ---------------------------------------------------------------- data setup

def setup_data(dsn):
    have = psql(dsn, "SELECT count(*) FROM pg_class WHERE relname IN "
                     "('pgbench_accounts', 'bench_bulk') AND relkind = 'r'")
    if have == "2" and os.environ.get("BENCH_REUSE_DATA") == "1":
        log("reusing existing pgbench and bench_bulk tables")
        return
    t0 = time.time()
    subprocess.run([os.path.join(PGBIN, "pgbench"), "-i", "-q", "-s", "10", "-d", dsn],
                   check=True, capture_output=True)
    psql(dsn, f"""
DROP TABLE IF EXISTS bench_bulk;
CREATE TABLE bench_bulk (id int8 PRIMARY KEY, t text NOT NULL, f float8 NOT NULL,
                         ts timestamptz NOT NULL, b bool NOT NULL, i int4 NOT NULL);
INSERT INTO bench_bulk
SELECT g, 'row-' || g || '-' || md5(g::text), g * 0.25 + 0.125,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
       g % 3 = 0, (g % 100000)::int4
FROM generate_series(1, {BULK_ROWS}) g;
VACUUM (FREEZE, ANALYZE) bench_bulk;
VACUUM ANALYZE pgbench_accounts;
""", script=True)
    log(f"data ready: pgbench scale 10, bench_bulk {BULK_ROWS} rows ({time.time() - t0:.1f} s)")


def bulk_expected(dsn, limit=0):
    where = f"WHERE id <= {int(limit)}" if limit else ""
    r = psql(dsn, "SELECT count(*), sum(id), sum(length(t)), sum(f), "
                  "sum((extract(epoch FROM ts) * 1000000)::int8 - 1704067200000000), "
                  f"count(*) FILTER (WHERE b), sum(i) FROM bench_bulk {where}").split("|")
    return {"rows": int(r[0]), "sum_id": int(r[1]), "sum_len_t": int(r[2]), "sum_f": float(r[3]),
            "sum_ts_us": int(r[4]), "n_true": int(r[5]), "sum_i": int(r[6])}


# ---------------------------------------------------------------- contenders

class Contender:
    """role: peer | floor | molt.  kind: json (the contract) | pgbench | wall."""

    def __init__(self, name, role, kind, argv=None, note="", missing=None, txn_ops=1,
                 wall_ops=None, no_check=None):
        self.name, self.role, self.kind, self.argv = name, role, kind, argv
        self.note, self.missing, self.txn_ops, self.wall_ops = note, missing, txn_ops, wall_ops
        self.no_check = no_check

    def unavailable(self):
        if self.missing:
            return self.missing() if callable(self.missing) else self.missing
        return None


def binary_missing(path, what):
    if not os.path.isfile(path):
        return f"{os.path.relpath(path, ROOT)} not found ({what})"
    if not os.access(path, os.X_OK):
        return f"{os.path.relpath(path, ROOT)} is not executable"
    return None


def molt(name, args, note="", build=None, role="molt"):
    """molt_bench (bench/c) of build/, or of another build directory."""
    binary = os.path.join(build, "bench", "molt_bench") if build else MOLT_BIN
    c = Contender(name, role, "json", note=note,
                  missing=lambda: binary_missing(binary, "bench/c/, built by `make build`"),
                  argv=lambda ctx, s: [binary] + args(ctx, s))
    c.with_build = lambda b, n: molt(n, args, note, b, "baseline")
    return c


def molt_py(name, args, note="", build=None, role="molt"):
    """Python through molt_db_adapter to build/molt_worker (bench/peers/molt_peer.py).
    With another build directory: that tree's molt_peer.py too, which imports
    that tree's python/ (its molt_db_adapter and the extension modules its
    build put there), so the in-process contenders run the other commit's
    code, not only its worker."""
    worker = os.path.join(build, "molt_worker") if build else WORKER_BIN
    peer = os.path.join(os.path.dirname(os.path.abspath(build)), "bench", "peers", "molt_peer.py") \
        if build else os.path.join(PEERS, "molt_peer.py")

    def missing():
        if not os.path.isfile(peer):
            return f"{peer} not found (the baseline's tree is the parent of its build directory)"
        return binary_missing(worker, "worker/, built by `make build`")

    c = Contender(name, role, "json", note=note, missing=missing,
                  argv=lambda ctx, s: [PY, peer] + args(ctx, s) + ["--worker", worker])
    c.with_build = lambda b, n: molt_py(n, args, note, b, "baseline")
    return c


def with_baseline(scs, build):
    """An A/B run: every molt contender again, right after itself, with the
    binaries of another build directory (role "baseline", not a peer)."""
    try:
        rev = subprocess.run(["git", "-C", build, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip() or build
    except OSError:
        rev = build
    for sc in scs:
        out = []
        for c in sc["contenders"]:
            out.append(c)
            if c.role == "molt" and getattr(c, "with_build", None):
                out.append(c.with_build(build, f"{c.name} [baseline {rev}]"))
        sc["contenders"] = out
    return scs


def py_peer(name, script, args, note=""):
    return Contender(name, "peer", "json", note=note,
                     argv=lambda ctx, s: [PY, os.path.join(PEERS, script)] + args(ctx, s))


def not_yet(name, role, note=""):
    return Contender(name, role, "json", note=note, missing=NOT_YET)


def pgbench(name, args, script=None, txn_ops=1, note=""):
    def argv(ctx, s):
        a = [os.path.join(PGBIN, "pgbench"), "-n", "-M", "prepared", "-T", str(max(1, round(s))),
             "--log", "--log-prefix=" + ctx.next_log_prefix()] + args
        if script:
            path = os.path.join(ctx.tmp, script[0])
            with open(path, "w") as f:
                f.write(script[1])
            a += ["-f", path]
        return a + [ctx.dsn]
    return Contender(name, "peer", "pgbench", argv=argv, txn_ops=txn_ops, note=note,
                     no_check="pgbench does not expose result values (same SQL as the others)")


PINGPONG_SCRIPT = ("pingpong.sql", "\\set x random(1, 1000000)\nSELECT :x::int8;\n")
# the server work of one db_query: molt's read-only frame (BEGIN READ ONLY,
# the statement, ROLLBACK under one Sync)
FRAMED_PINGPONG_SCRIPT = ("pingpong_read_only.sql",
                          "\\set x random(1, 1000000)\n\\startpipeline\nBEGIN READ ONLY;\n"
                          "SELECT :x::int8;\nROLLBACK;\n\\endpipeline\n")
PIPE_SCRIPT = ("pk_pipeline10.sql",
               "".join(f"\\set aid{k} random(1, 100000 * 10)\n" for k in range(10))
               + "\\startpipeline\n"
               + "".join(f"SELECT abalance FROM pgbench_accounts WHERE aid = :aid{k};\n" for k in range(10))
               + "\\endpipeline\n")


def write_scenarios(ctx):
    """INSERT and COPY of 100k rows from Python: asyncpg, psycopg and the
    worker. Each contender writes into a fresh unlogged table of its own and
    reads back count, sum(id) and sum(f) for the check."""
    sys.path.insert(0, PEERS)
    from _common import WRITE_ROWS, write_expected
    expected = lambda: write_expected(WRITE_ROWS)  # noqa: E731
    args = lambda mode: lambda c, s: [mode, "--dsn", c.dsn]  # noqa: E731
    molt_args = lambda mode: lambda c, s: [mode, "--dsn", c.dsn, "--conns", "1"]  # noqa: E731
    return [
        dict(key="ipc_executemany100k", unit="row", latency=False, timed=False,
             title="From Python: INSERT 100k rows (int8, text, float8) with executemany, one connection",
             expected=expected,
             contenders=[
                 py_peer("asyncpg executemany (one transaction)", "asyncpg_peer.py", args("many")),
                 py_peer("psycopg 3 executemany (pipelined, one transaction)", "psycopg_peer.py",
                         args("many")),
                 molt_py("MoltClient.executemany -> molt_worker --stdio", molt_args("many"),
                         note="10 calls of 10 000 rows (the most one db_exec statements list holds), "
                              "each its own transaction; the worker's pool has 1 connection"),
             ]),
        dict(key="ipc_copy_in100k", unit="row", latency=False, timed=False,
             title="From Python: COPY 100k rows (int8, text, float8) into a table, one connection",
             expected=expected,
             contenders=[
                 py_peer("asyncpg copy_records_to_table (binary COPY)", "asyncpg_peer.py",
                         args("copyin")),
                 py_peer("psycopg 3 cursor.copy + write_row (one transaction)", "psycopg_peer.py",
                         args("copyin")),
                 molt_py("MoltClient.copy_in -> molt_worker --stdio (text COPY)", molt_args("copyin"),
                         note="one copy_in request: the rows as MsgPack, one COPY FROM STDIN in one "
                              "transaction"),
             ]),
    ]


def secs(ctx, s):
    return ["--dsn", ctx.dsn, "--seconds", f"{s:g}"]


def scenarios(ctx):
    pk_exp = lambda: [int(v) for v in psql(ctx.dsn, "SELECT abalance FROM pgbench_accounts WHERE aid IN "
                                                   "(1, 500000, 1000000) ORDER BY aid").split()]
    sc = []
    sc.append(dict(
        key="pingpong", unit="query", latency=True,
        title="Point query ping-pong, one connection: SELECT $1::int8, prepared",
        expected=lambda: PINGPONG_CHECK,
        contenders=[
            pgbench("pgbench -M prepared -c 1 (libpq, C)", ["-c", "1", "-j", "1"], PINGPONG_SCRIPT),
            py_peer("asyncpg (1 conn, prepared)", "asyncpg_peer.py", lambda c, s: ["pingpong"] + secs(c, s)),
            py_peer("psycopg 3 (sync, binary, prepared)", "psycopg_peer.py",
                    lambda c, s: ["pingpong"] + secs(c, s)),
            molt("molt_bench pingpong", lambda c, s: ["pingpong"] + secs(c, s)),
        ]))
    sc.append(dict(
        key="pk_inflight64", unit="query", latency=True,
        title="Primary-key SELECT on pgbench_accounts (scale 10), 64 in flight, not pipelined",
        expected=pk_exp,
        contenders=[
            pgbench("pgbench -S -M prepared -c 8 -j 1", ["-S", "-c", "8", "-j", "1"],
                    note="8 connections = 8 in flight (pgbench has one query per connection in flight)"),
            py_peer("asyncpg pool 16 conns, 64 tasks", "asyncpg_peer.py",
                    lambda c, s: ["pk", "--conns", "16", "--inflight", "64"] + secs(c, s)),
            py_peer("psycopg_pool async 16 conns, 64 tasks", "psycopg_peer.py",
                    lambda c, s: ["pk", "--conns", "16", "--inflight", "64"] + secs(c, s)),
            molt("molt_bench pk --conns 8 --inflight 64",
                 lambda c, s: ["pk", "--conns", "8", "--inflight", "64"] + secs(c, s)),
        ]))
    def pk256_contenders():
        return [
            pgbench("pgbench -M prepared -c 4, pipelines of 10", ["-c", "4", "-j", "1"], PIPE_SCRIPT,
                    txn_ops=10, note="4 connections x 10 = 40 in flight; latency is per 10-query pipeline"),
            py_peer("asyncpg pool 16 conns, 256 tasks", "asyncpg_peer.py",
                    lambda c, s: ["pk", "--conns", "16", "--inflight", "256"] + secs(c, s)),
            py_peer("psycopg_pool async 16 conns, 256 tasks", "psycopg_peer.py",
                    lambda c, s: ["pk", "--conns", "16", "--inflight", "256"] + secs(c, s)),
            molt("molt_bench pk --conns 4 --inflight 256",
                 lambda c, s: ["pk", "--conns", "4", "--inflight", "256"] + secs(c, s)),
        ]
    sc.append(dict(
        key="pk_inflight256", unit="query", latency=True,
        title="Primary-key SELECT, 256 in flight (pipelined where the client can)",
        expected=pk_exp, contenders=pk256_contenders()))
    # The same, with nothing pinned: the server may use both CPUs, as it
    # would on a machine of its own. Pinned, molt is bound by the server's one
    # core (about 130k q/s) and asyncpg by its own Python; this shows what each
    # client reaches when the server is not held to one CPU.
    sc.append(dict(
        key="pk_inflight256_shared", unit="query", latency=True, unpinned=True,
        title="Primary-key SELECT, 256 in flight, nothing pinned (server and clients share every CPU)",
        expected=pk_exp,
        unavailable=None if ctx.client_cpu else "pinning is off in this run, so pk_inflight256 is already unpinned",
        contenders=pk256_contenders()))
    sc.append(dict(
        key="pool_acquire", unit="acquire", latency=False, timed=False,
        title="Pool acquire + release, uncontended (1 connection, 1 request at a time); "
              "CPU µs/acquire is the pool's own work per request",
        expected=lambda: None,
        contenders=[
            molt("molt_bench acquire", lambda c, s: ["acquire", "--dsn", c.dsn],
                 note="median molt_db_pool_query call minus molt_db_conn_execute call (acquire), plus "
                      "median on_row-to-on_done through the pool minus on a bare connection (release); "
                      "same query, same process, alternating blocks; see bench/c/bench_acquire.c"),
        ]))
    copy_sql = "COPY (SELECT id, t, f, ts, b, i FROM bench_bulk) TO STDOUT (FORMAT binary)"
    sc.append(dict(
        key="bulk_1m", unit="row", latency=False, timed=False,
        title="Bulk read of 1M rows (int8, text, float8, timestamptz, bool, int4)",
        expected=lambda: bulk_expected(ctx.dsn),
        contenders=[
            Contender("psql COPY BINARY to /dev/null (floor, no decoding)", "floor", "wall",
                      argv=lambda c, s: [os.path.join(PGBIN, "psql"), "-X", "-q", "-o", "/dev/null",
                                         "-d", c.dsn, "-c", copy_sql],
                      wall_ops=BULK_ROWS, no_check="rows are not decoded",
                      note="wall and CPU of the whole psql process, connection included"),
            py_peer("adbc-driver-postgresql -> pyarrow.Table", "adbc_peer.py", lambda c, s: ["bulk", "--dsn", c.dsn]),
            py_peer("asyncpg fetch -> Records", "asyncpg_peer.py", lambda c, s: ["bulk", "--dsn", c.dsn]),
            py_peer("psycopg 3 binary fetchall -> tuples", "psycopg_peer.py", lambda c, s: ["bulk", "--dsn", c.dsn]),
            molt("molt_bench bulk-arrow", lambda c, s: ["bulk-arrow", "--dsn", c.dsn]),
            molt("molt_bench bulk-structs", lambda c, s: ["bulk-structs", "--dsn", c.dsn]),
            # the COPY path, as ADBC reads (the server emits COPY rows faster
            # than DataRows)
            molt("molt_bench bulk-arrow --via copy",
                 lambda c, s: ["bulk-arrow", "--via", "copy", "--dsn", c.dsn]),
            molt("molt_bench bulk-structs --via copy",
                 lambda c, s: ["bulk-structs", "--via", "copy", "--dsn", c.dsn]),
        ]))
    sc.append(dict(
        key="ipc_point", unit="query", latency=True,
        title="From Python: one point query at a time (SELECT $1::int8), direct drivers vs molt_worker IPC; "
              "CPU = the client process's CPU per call",
        expected=lambda: PINGPONG_CHECK,
        contenders=[
            pgbench("pgbench -M prepared -c 1 (libpq, C)", ["-c", "1", "-j", "1"], PINGPONG_SCRIPT,
                    note="the C floor, in the same run as the Python clients"),
            pgbench("pgbench -M prepared -c 1, db_query's read-only frame (libpq, C)", ["-c", "1", "-j", "1"],
                    FRAMED_PINGPONG_SCRIPT,
                    note="the C floor of the same server work as the molt contenders' db_query: BEGIN READ "
                         "ONLY, the SELECT and ROLLBACK pipelined under one Sync"),
            py_peer("asyncpg (1 conn, prepared)", "asyncpg_peer.py", lambda c, s: ["pingpong"] + secs(c, s)),
            py_peer("psycopg 3 (sync, binary, prepared)", "psycopg_peer.py",
                    lambda c, s: ["pingpong"] + secs(c, s)),
            molt_py("molt_db_adapter MoltClient (sync) -> molt_worker --stdio", lambda c, s:
                    ["pingpong", "--client", "sync", "--conns", "1"] + secs(c, s),
                    note="msgpack results; the worker's pool has 1 connection"),
            molt_py("molt_db_adapter AsyncMoltClient -> molt_worker --stdio", lambda c, s:
                    ["pingpong", "--client", "async", "--conns", "1"] + secs(c, s),
                    note="msgpack results; the worker's pool has 1 connection"),
            py_peer("psqlpy (1 conn, prepared)", "psqlpy_peer.py", lambda c, s: ["pingpong"] + secs(c, s)),
            molt_py("molt_db_adapter InProcessClient (sync, host in this process)", lambda c, s:
                    ["pingpong", "--client", "inprocess", "--conns", "1"] + secs(c, s),
                    note="msgpack results; the host's pool has 1 connection; the host is driven on "
                         "the calling thread, its CPU included"),
            molt_py("molt_db_adapter AsyncInProcessClient (host in this process)", lambda c, s:
                    ["pingpong", "--client", "inprocess-async", "--conns", "1"] + secs(c, s),
                    note="msgpack results; the host's pool has 1 connection; the host is driven on "
                         "the event loop, its CPU included"),
        ]))
    sc.append(dict(
        key="ipc_pk_inflight64", unit="query", latency=True,
        title="From one Python process: primary-key SELECT on pgbench_accounts, 64 in flight, "
              "asyncpg vs molt_worker over its Unix socket (msgpack)",
        expected=pk_exp,
        contenders=[
            pgbench("pgbench -S -M prepared -c 8 -j 1", ["-S", "-c", "8", "-j", "1"],
                    note="the C floor in the same run: 8 connections = 8 in flight"),
            py_peer("asyncpg pool 16 conns, 64 tasks", "asyncpg_peer.py",
                    lambda c, s: ["pk", "--conns", "16", "--inflight", "64"] + secs(c, s)),
            molt_py("AsyncMoltClient(socket_path) 64 tasks -> molt_worker --socket, pool 16 conns",
                    lambda c, s: ["pk", "--conns", "16", "--inflight", "64"] + secs(c, s),
                    note="the worker's pool has 16 connections, the pool size of the asyncpg contender; "
                         "the worker is the contender's child, on the client CPU with it"),
            py_peer("psqlpy pool 16 conns, 64 tasks", "psqlpy_peer.py",
                    lambda c, s: ["pk", "--conns", "16", "--inflight", "64"] + secs(c, s)),
            molt_py("AsyncInProcessClient 64 tasks, host in this process, pool 16 conns",
                    lambda c, s: ["pk", "--client", "inprocess-async", "--conns", "16", "--inflight", "64"]
                    + secs(c, s),
                    note="the host's pool has 16 connections; the host is driven on the event loop, its "
                         "CPU included"),
        ]))
    sc += host_scenarios(pk_exp)
    sc.append(dict(
        key="ipc_read100k", unit="row", latency=False, timed=False,
        title="From Python: read 100k rows (ORDER BY id LIMIT 100000), direct drivers vs molt_worker IPC",
        expected=lambda: bulk_expected(ctx.dsn, 100000),
        contenders=[
            py_peer("adbc-driver-postgresql -> pyarrow.Table", "adbc_peer.py",
                    lambda c, s: ["bulk", "--dsn", c.dsn, "--limit", "100000"]),
            py_peer("asyncpg fetch -> Records", "asyncpg_peer.py",
                    lambda c, s: ["bulk", "--dsn", c.dsn, "--limit", "100000"]),
            py_peer("psycopg 3 binary fetchall -> tuples", "psycopg_peer.py",
                    lambda c, s: ["bulk", "--dsn", c.dsn, "--limit", "100000"]),
            molt_py("molt_db_adapter -> molt_worker --stdio, arrow_ipc -> pyarrow.Table",
                    lambda c, s: ["bulk", "--dsn", c.dsn, "--limit", "100000", "--conns", "1",
                                  "--format", "arrow_ipc"]),
            py_peer("connectorx -> pyarrow.Table", "connectorx_peer.py",
                    lambda c, s: ["bulk", "--dsn", c.dsn, "--limit", "100000"]),
            molt_py("molt_db_adapter InProcessClient (host in this process), arrow_ipc -> pyarrow.Table",
                    lambda c, s: ["bulk", "--dsn", c.dsn, "--limit", "100000", "--conns", "1",
                                  "--format", "arrow_ipc", "--client", "inprocess"]),
            molt_py("molt_db_adapter -> molt_worker --stdio, msgpack -> tuples (C row decoder)",
                    lambda c, s: ["bulk", "--dsn", c.dsn, "--limit", "100000", "--conns", "1",
                                  "--format", "msgpack"]),
            molt_py("molt_db_adapter -> molt_worker --stdio, msgpack -> tuples (pure-Python decoder)",
                    lambda c, s: ["bulk", "--dsn", c.dsn, "--limit", "100000", "--conns", "1",
                                  "--format", "msgpack", "--decoder", "python"]),
            molt_py("molt_db_adapter -> molt_worker --stdio, msgpack -> dicts (C row decoder)",
                    lambda c, s: ["bulk", "--dsn", c.dsn, "--limit", "100000", "--conns", "1",
                                  "--format", "msgpack", "--shape", "dicts"]),
            molt_py("InProcessClient (host in this process), msgpack -> tuples (C row decoder)",
                    lambda c, s: ["bulk", "--client", "inprocess", "--dsn", c.dsn, "--limit", "100000",
                                  "--conns", "1", "--format", "msgpack"],
                    note="CPU includes the host's loop thread"),
            molt_py("InProcessClient (host in this process), msgpack -> dicts (C row decoder)",
                    lambda c, s: ["bulk", "--client", "inprocess", "--dsn", c.dsn, "--limit", "100000",
                                  "--conns", "1", "--format", "msgpack", "--shape", "dicts"],
                    note="CPU includes the host's loop thread"),
        ]))
    sc += write_scenarios(ctx)
    sc.append(sql_compile_scenario())
    sc += django_scenarios(ctx)
    netem = ctx.netem
    for base in ("pingpong", "pk_inflight64"):
        src = next(s for s in sc if s["key"] == base)
        reason = None if netem.get("ok") else f"netem unavailable on this machine: {netem.get('error', 'not probed')}"
        sc.append(dict(
            key=base + "_netem1ms", unit="query", latency=True,
            title=src["title"] + " — through a veth link with netem delay 1ms",
            expected=src["expected"], netem=True, unavailable=reason,
            contenders=src["contenders"]))
    return sc


def host_scenarios(pk_exp):
    """The host ABI (molt_db/host.h, docs/host.md): the worker's request core
    inside the client's process, threaded mode, beside the direct pool doing
    the same server work (db_query's BEGIN READ ONLY ... ROLLBACK, one Sync
    per query) and molt_worker over its socket, in the same run."""
    out = []
    for key, conns, inflight, what in (("host_point", 1, 1, "one request at a time"),
                                       ("host_point_inflight64", 8, 64, "64 in flight")):
        pool_args = ["--conns", str(conns), "--inflight", str(inflight)]
        out.append(dict(
            key=key, unit="query", latency=True,
            title=f"Primary-key SELECT in db_query's read-only transaction, {what}: "
                  "the host ABI vs the direct pool vs molt_worker over its socket",
            expected=pk_exp,
            contenders=[
                molt(f"molt_bench pk --conns {conns} --inflight {inflight} --read-only-tx --no-batch",
                     lambda c, s, a=pool_args: ["pk"] + a + ["--read-only-tx", "--no-batch"] + secs(c, s),
                     note="the molt_db pool alone, the same server work as db_query"),
                molt(f"molt_bench host --conns {conns} --inflight {inflight}",
                     lambda c, s, a=pool_args: ["host"] + a + secs(c, s),
                     note="db_query envelopes through molt_db_host (threaded mode), each frame's status "
                          "and value read with a cursor, as a runtime's binding reads them; CPU is both "
                          "threads"),
                molt(f"molt_bench host --conns {conns} --inflight {inflight} --driven --host-waits",
                     lambda c, s, a=pool_args: ["host"] + a + ["--driven", "--host-waits"] + secs(c, s),
                     note="the same in driven mode: one thread, no wake-up between threads; the host "
                          "waits in molt_db_host_poll(h, ms), as InProcessClient drives it"),
                molt_py(f"AsyncMoltClient(socket_path) {inflight} tasks -> molt_worker --socket, "
                        f"pool {conns} conns",
                        lambda c, s, a=pool_args: ["pk"] + a + secs(c, s),
                        note="Python client; the worker is the contender's child"),
            ]))
    return out


# ---------------------------------------------------------------- query builders

# the query bench/peers/sql_compile_peer.py builds, written by hand, and the
# sums of its rows that each contender reports as its check
SQL_COMPILE_CHECK = """
SELECT count(*), sum(aid), sum(tid), sum(total), sum(rn) FROM (
  WITH top AS (SELECT bid, sum(abalance) AS total FROM pgbench_accounts WHERE aid <= 50000 GROUP BY bid)
  SELECT a.aid, b.bid, t.tid, top.total,
         row_number() OVER (PARTITION BY b.bid ORDER BY a.abalance DESC, a.aid, t.tid) AS rn
  FROM pgbench_accounts a JOIN pgbench_branches b ON b.bid = a.bid
       JOIN pgbench_tellers t ON t.bid = b.bid JOIN top ON top.bid = b.bid
  WHERE a.aid <= 1000 AND t.tid <= 10 ORDER BY rn, a.aid, t.tid LIMIT 100) q
"""


def sql_compile_scenario():
    def peer(name, role, args, note=""):
        return Contender(name, role, "json", note=note,
                         argv=lambda c, s: [PY, os.path.join(PEERS, "sql_compile_peer.py")] + args + secs(c, s))
    built = "each op builds the query and compiles it to PostgreSQL text + parameters"
    return dict(
        key="sql_compile", unit="compile", latency=False,
        title="Query builder: build + compile one query (a CTE, 3 joins, row_number() OVER) for PostgreSQL, "
              "molt_sql vs SQLAlchemy Core, no database work",
        expected=lambda: [int(v) for v in psql(os.environ["MOLT_TEST_DSN"], SQL_COMPILE_CHECK).split("|")],
        contenders=[
            peer("SQLAlchemy Core 2.1 select().compile(postgresql)", "peer", ["sqlalchemy"], built),
            peer("molt_sql Select.compile('postgres')", "molt", ["molt_sql"], built),
            peer("SQLAlchemy Core, prebuilt query, compile only", "peer", ["sqlalchemy", "--prebuilt"],
                 "the query is built once; each op compiles it"),
            peer("molt_sql, prebuilt query, compile only", "molt", ["molt_sql", "--prebuilt"],
                 "the query is built once; each op compiles it"),
        ])


# ---------------------------------------------------------------- Django

DJANGO_DEMO = os.path.join(ROOT, "examples", "django_demo")
DJANGO_ITEMS = 120000
DJANGO_QS_ROWS = 10000


def django_manage(dsn, *args):
    env = dict(os.environ, MOLT_DEMO_PG_DSN=dsn)
    subprocess.run([PY, os.path.join(DJANGO_DEMO, "manage.py"), *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def setup_django_data(dsn):
    """The demo project's tables and 120k items (examples/django_demo), once."""
    if psql(dsn, "SELECT to_regclass('catalog_item') IS NOT NULL") == "t" and \
            int(psql(dsn, "SELECT count(*) FROM catalog_item")) == DJANGO_ITEMS:
        return
    t0 = time.time()
    django_manage(dsn, "migrate", "-v", "0")
    django_manage(dsn, "make_demo_data", "--items", str(DJANGO_ITEMS))
    psql(dsn, "VACUUM ANALYZE catalog_item", script=True)
    psql(dsn, "VACUUM ANALYZE catalog_seller", script=True)
    log(f"django demo data ready: {DJANGO_ITEMS} items ({time.time() - t0:.1f} s)")


def django_list_expected(dsn):
    """What GET /api/items?user_id=1&limit=1000 must hold (bench/peers/django_peer.py page_check)."""
    setup_django_data(dsn)
    page = ("SELECT id, price, meta FROM catalog_item WHERE is_public AND seller_id = 1 "
            "ORDER BY id DESC LIMIT 1001")
    r = psql(dsn, f"SELECT count(*), sum(id), sum(price * 100)::int8, count(*) FILTER (WHERE meta ? 'color'), "
                  f"min(id) FROM (SELECT * FROM ({page}) p ORDER BY id DESC LIMIT 1000) q").split("|")
    more = psql(dsn, f"SELECT count(*) FROM ({page}) p") == "1001"
    counts = {}
    for line in psql(dsn, "SELECT status, count(*) FROM catalog_item WHERE is_public AND seller_id = 1 "
                          "GROUP BY status").splitlines():
        k, v = line.split("|")
        counts[k] = int(v)
    return {"items": int(r[0]), "sum_id": int(r[1]), "sum_amount_cents": int(r[2]), "n_color": int(r[3]),
            "next_cursor": int(r[4]) if more else None, "counts": counts}


def django_qs_expected(dsn):
    setup_django_data(dsn)
    r = psql(dsn, f"SELECT count(*), sum(id), sum(price * 100)::int8 FROM "
                  f"(SELECT id, price FROM catalog_item ORDER BY id LIMIT {DJANGO_QS_ROWS}) t").split("|")
    return {"rows": int(r[0]), "sum_id": int(r[1]), "sum_price_cents": int(r[2])}


def django_scenarios(ctx):
    peer = lambda name, role, args, note="": Contender(
        name, role, "json", note=note,
        argv=lambda c, s: [PY, os.path.join(PEERS, "django_peer.py")] + args + secs(c, s))
    server_cpu = ("CPU/op: gunicorn's processes, molt_worker (offload) and the load generator "
                  "during the measured part (/proc), i.e. the server side too")
    conc = ["--concurrency", "16", "--workers", "2", "--threads", "8"]
    return [
        dict(key="django_list", unit="request", latency=True,
             title="Django list endpoint (1,000 items, examples/django_demo) under gunicorn, "
                   "2 gthread workers x 8 threads, 16 concurrent clients: ORM baseline vs @molt_offload",
             expected=lambda: django_list_expected(ctx.dsn),
             contenders=[
                 peer("Django 5.2 ORM (psycopg 3) + JsonResponse, /baseline/", "peer",
                      ["list", "--mode", "baseline"] + conc, server_cpu),
                 peer("Django + @molt_offload (molt_worker writes the JSON), /offload/", "molt",
                      ["list", "--mode", "offload"] + conc, server_cpu),
                 peer("Django + @molt_offload, molt_db in process (TRANSPORT inprocess), /offload/", "molt",
                      ["list", "--mode", "offload", "--transport", "inprocess"] + conc, server_cpu),
             ]),
    ] + [scenario for db in ("pg", "sqlite") for scenario in django_qs_scenarios(ctx, peer, db)]


def django_qs_scenarios(ctx, peer, db):
    """django_values10k / django_models10k (PostgreSQL) and their _sqlite
    twins (a SQLite file of the same rows, made by django_peer.py)."""
    suffix, orm = ("", "Django 5.2 ORM (psycopg 3)") if db == "pg" else ("_sqlite", "Django 5.2 ORM (sqlite3)")
    where = "" if db == "pg" else " on SQLite"
    args = ["--db", db]
    kinds = [("values", "django_values10k", ".values()",
              "Django QuerySet .values() of 10k rows (7 fields incl. decimal, datetime, UUID, JSON)"),
             ("models", "django_models10k", "model instances", "Django QuerySet of 10k model instances")]
    return [
        dict(key=key + suffix, unit="row", latency=False,
             title=f"{title}{where}: ORM vs offloaded",
             expected=lambda: django_qs_expected(ctx.dsn),
             contenders=[
                 peer(f"{orm} {what}", "peer", [kind, "--mode", "orm"] + args),
                 peer(f"molt_django_adapter offloading() {what} (C row decoder)", "molt",
                      [kind, "--mode", "offload"] + args),
                 peer(f"molt_django_adapter offloading() {what} (pure-Python rows)", "molt",
                      [kind, "--mode", "offload", "--decoder", "python"] + args),
                 peer(f"molt_django_adapter offloading() {what}, molt_db in process (C row decoder)", "molt",
                      [kind, "--mode", "offload", "--transport", "inprocess"] + args),
             ])
        for kind, key, what, title in kinds
    ]


# ---------------------------------------------------------------- running

class Ctx:
    def __init__(self, dsn, quick, tmp, netem):
        self.dsn, self.quick, self.tmp, self.netem = dsn, quick, tmp, netem
        self.seconds = 2.0 if quick else 5.0
        self.warmup = 1.0 if quick else 2.0
        self.reps = 3 if quick else 5
        self.client_cpu = os.environ.get("BENCH_CLIENT_CPUS", "1")
        self._n = 0

    def next_log_prefix(self):
        self._n += 1
        return os.path.join(self.tmp, f"pgblog{self._n}")


def pgbench_parse(out, log_prefix, txn_ops):
    r = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("number of transactions actually processed:"):
            r["txns"] = int(line.split(":")[1].split("/")[0])
        elif line.startswith("number of failed transactions:"):
            r["failed"] = int(line.split(":")[1].split("(")[0])
        elif line.startswith("tps =") and "without initial connection time" in line:
            r["tps"] = float(line.split("=")[1].split()[0])
    if "txns" not in r or "tps" not in r:
        raise ValueError("could not parse pgbench output")
    lat = []
    for path in glob.glob(log_prefix + ".*"):
        with open(path) as f:
            for ln in f:
                p = ln.split()
                if len(p) >= 3:
                    lat.append(int(p[2]))
        os.unlink(path)
    lat.sort()
    res = {"ops": r["txns"] * txn_ops, "seconds": r["txns"] / r["tps"] if r["tps"] else 0.0}
    if lat:
        k = lambda q: lat[min(len(lat) - 1, max(0, -(-int(q * len(lat) * 1000) // 1000) - 1))]
        res["latencies_us"] = {"p50": float(k(0.50)), "p99": float(k(0.99)), "n": len(lat)}
    if r.get("failed"):
        res["errors"] = r["failed"]
    return res


def run_one(ctx, c, seconds, netns=None):
    reason = c.unavailable()
    if reason:
        return {"status": "missing", "reason": reason}
    argv = c.argv(ctx, seconds)
    log_prefix = None
    if c.kind == "pgbench":
        log_prefix = next(a.split("=", 1)[1] for a in argv if a.startswith("--log-prefix="))
    prefix = ["taskset", "-c", ctx.client_cpu] if ctx.client_cpu else []
    if netns:
        prefix = ["ip", "netns", "exec", netns] + prefix
    full = prefix + argv
    fout = tempfile.TemporaryFile(dir=ctx.tmp)
    ferr = tempfile.TemporaryFile(dir=ctx.tmp)
    t0 = time.perf_counter()
    p = subprocess.Popen(full, stdout=fout, stderr=ferr, stdin=subprocess.DEVNULL, cwd=ctx.tmp)
    timeout = seconds * 4 + 120
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    _, status, ru = os.wait4(p.pid, 0)
    timer.cancel()
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    fout.seek(0)
    ferr.seek(0)
    out = fout.read().decode(errors="replace")
    err = ferr.read().decode(errors="replace")
    base = {"cmd": shlex.join(full), "cpu_process_s": ru.ru_utime + ru.ru_stime,
            "maxrss_kb": ru.ru_maxrss, "wall_process_s": wall}
    if p.returncode != 0:
        tail = (err.strip() or out.strip())[-600:]
        return dict(base, status="failed", reason=f"exit status {p.returncode}: {tail}")
    try:
        if c.kind == "json":
            lines = [ln for ln in out.splitlines() if ln.strip()]
            r = json.loads(lines[-1])
            if not isinstance(r, dict):
                raise ValueError("last stdout line is not a JSON object")
        elif c.kind == "pgbench":
            r = pgbench_parse(out, log_prefix, c.txn_ops)
        else:
            r = {"ops": c.wall_ops, "seconds": wall, "rows": c.wall_ops}
        ops, sec = int(r["ops"]), float(r["seconds"])
        if ops <= 0 or sec <= 0:
            raise ValueError(f"ops={ops} seconds={sec}")
    except Exception as e:  # a contender that breaks the contract has failed
        return dict(base, status="failed", reason=f"bad output ({e}): {out[-300:]!r} {err[-300:]!r}")
    res = dict(base, status="ok", ops=ops, seconds=sec, throughput=ops / sec)
    cpu = r.get("cpu_seconds")
    res["cpu_measured_s"] = float(cpu) if cpu is not None else res["cpu_process_s"]
    res["cpu_source"] = "self-reported (measured part)" if cpu is not None else "wait4 (whole process)"
    if r.get("worker_cpu_seconds") is not None:
        res["worker_cpu_s"] = float(r["worker_cpu_seconds"])
    lat = r.get("latencies_us")
    if isinstance(lat, list) and lat:
        lat = sorted(lat)
        lat = {"p50": lat[int(0.5 * (len(lat) - 1))], "p99": lat[int(0.99 * (len(lat) - 1))], "n": len(lat)}
    if isinstance(lat, dict):
        res["p50_us"], res["p99_us"] = lat.get("p50"), lat.get("p99")
    if r.get("errors"):
        res["status"], res["reason"] = "failed", f"{r['errors']} wrong or failed operations"
    for k in ("check", "rows"):
        if k in r:
            res[k] = r[k]
    return res


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
        except (TypeError, ValueError):
            return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def summarize(c, runs, expected):
    s = {"role": c.role, "kind": c.kind, "note": c.note, "runs": runs}
    if runs and runs[0].get("status") == "missing":
        s["status"], s["reason"] = ("not implemented yet" if runs[0]["reason"] == NOT_YET else "not built"), runs[0]["reason"]
        return s
    ok = [r for r in runs if r.get("status") == "ok"]
    bad = [r for r in runs if r.get("status") != "ok"]
    s["cmd"] = runs[-1].get("cmd") if runs else None
    if bad:
        s["status"], s["reason"] = "failed", f"{len(bad)} of {len(runs)} runs failed; first: {bad[0].get('reason')}"
    else:
        s["status"] = "ok"
    if ok:
        med = lambda k: statistics.median([r[k] for r in ok]) if all(r.get(k) is not None for r in ok) else None
        s["throughput"] = med("throughput")
        s["p50_us"], s["p99_us"] = med("p50_us"), med("p99_us")
        s["cpu_us_per_op"] = statistics.median([r["cpu_measured_s"] / r["ops"] * 1e6 for r in ok])
        s["cpu_process_us_per_op"] = statistics.median([r["cpu_process_s"] / r["ops"] * 1e6 for r in ok])
        s["cpu_source"] = ok[0]["cpu_source"]
        if all("worker_cpu_s" in r for r in ok):
            s["worker_cpu_us_per_op"] = statistics.median([r["worker_cpu_s"] / r["ops"] * 1e6 for r in ok])
        s["peak_rss_mb"] = max(r["maxrss_kb"] for r in ok) / 1024.0
        s["reps_ok"] = len(ok)
    if c.no_check:
        s["check"] = f"n/a: {c.no_check}"
    elif expected is None:
        s["check"] = "n/a"
    elif ok:
        wrong = [r.get("check") for r in ok if not same(r.get("check"), expected)]
        if wrong:
            s["check"] = f"MISMATCH: got {json.dumps(wrong[0])[:300]}, expected {json.dumps(expected)[:300]}"
            s["status"] = "failed"
            s["reason"] = "wrong result (equality check on a sample failed)"
        else:
            s["check"] = "ok"
    return s


def plural(unit):
    return "queries" if unit == "query" else unit + "s"


def server_pids(dsn):
    """The postmaster (from postmaster.pid in the data directory) and its children."""
    with open(os.path.join(psql(dsn, "SHOW data_directory"), "postmaster.pid")) as f:
        pm = int(f.readline())
    pids = [pm]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pm:
                pids.append(int(d))
    return pids


def set_server_cpus(dsn, cpus):
    """Moves the server to cpus (new backends inherit the postmaster's);
    returns the CPUs it had. Raises OSError when we may not (not root)."""
    pids = server_pids(dsn)
    before = os.sched_getaffinity(pids[0])
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cpus)
        except ProcessLookupError:  # a backend that just ended
            pass
    return before


def run_scenario(ctx, sc):
    if not sc.get("unpinned") or sc.get("unavailable"):
        return run_scenario_here(ctx, sc)
    every = set(range(os.cpu_count() or 1))
    try:
        server_before = set_server_cpus(ctx.dsn, every)
    except (OSError, RuntimeError, ValueError) as e:
        return run_scenario_here(ctx, dict(sc, unavailable=f"cannot unpin the server: {e}"))
    client_before = ctx.client_cpu
    ctx.client_cpu = ",".join(str(c) for c in sorted(every))
    try:
        out = run_scenario_here(ctx, sc)
        out["pinning"] = (f"nothing pinned: the server and every client may use CPUs {ctx.client_cpu} "
                          f"(taskset; the server is moved back to CPU(s) "
                          f"{','.join(str(c) for c in sorted(server_before))} afterwards)")
        return out
    finally:
        ctx.client_cpu = client_before
        set_server_cpus(ctx.dsn, server_before)


def run_scenario_here(ctx, sc):
    log(f"scenario {sc['key']}: {sc['title']}")
    timed = sc.get("timed", True)
    out = {"title": sc["title"], "unit": sc["unit"], "latency": sc["latency"], "contenders": {}}
    if sc.get("unavailable"):
        out["status"] = "skipped"
        out["reason"] = sc["unavailable"]
        for c in sc["contenders"]:
            out["contenders"][c.name] = {"role": c.role, "status": "skipped", "reason": sc["unavailable"]}
        log(f"  skipped: {sc['unavailable']}")
        return out
    try:
        expected = sc["expected"]()
    except Exception as e:
        expected = None
        out["expected_error"] = str(e)
    out["expected_check"] = expected
    netns = ctx.netem.get("netns") if sc.get("netem") else None
    runs = {c.name: [] for c in sc["contenders"]}
    active = []
    for c in sc["contenders"]:
        w = run_one(ctx, c, ctx.warmup, netns)
        if w["status"] == "ok":
            active.append(c)
        else:
            runs[c.name].append(w)
            log(f"  {c.name}: {w['status']}: {w.get('reason', '')[:200]}")
    for rep in range(ctx.reps):
        order = active[rep % len(active):] + active[:rep % len(active)] if active else []
        for c in order:
            r = run_one(ctx, c, ctx.seconds if timed else 0, netns)
            runs[c.name].append(r)
            tp = f"{r['throughput']:,.0f} {plural(sc['unit'])}/s" if r["status"] == "ok" else r["status"] + " " + r.get("reason", "")[:200]
            log(f"  rep {rep + 1}/{ctx.reps} {c.name}: {tp}")
    for c in sc["contenders"]:
        out["contenders"][c.name] = summarize(c, runs[c.name], expected)
    peers = [v["throughput"] for v in out["contenders"].values()
             if v["role"] == "peer" and v["status"] == "ok" and v.get("throughput")]
    best = max(peers) if peers else None
    out["best_peer_throughput"] = best
    for v in out["contenders"].values():
        if best and v.get("throughput"):
            v["ratio_to_best_peer"] = v["throughput"] / best
    return out


# ---------------------------------------------------------------- machine

def machine(dsn, ctx, command):
    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""
    cpu = next((ln.split(":", 1)[1].strip() for ln in read("/proc/cpuinfo").splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = next((ln.split()[1] for ln in read("/proc/meminfo").splitlines() if ln.startswith("MemTotal")), "0")
    vers = {}
    try:
        from importlib import metadata
        for d in ("asyncpg", "psycopg", "psycopg-binary", "psycopg-pool", "adbc-driver-postgresql",
                  "pyarrow", "Django", "gunicorn", "matplotlib", "SQLAlchemy"):
            try:
                vers[d] = metadata.version(d)
            except metadata.PackageNotFoundError:
                vers[d] = None
    except ImportError:
        pass
    try:
        pgbv = subprocess.run([os.path.join(PGBIN, "pgbench"), "--version"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        pgbv = None
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = None
    settings = {}
    for name in ("shared_buffers", "max_connections", "fsync", "synchronous_commit", "jit",
                 "max_parallel_workers_per_gather", "ssl", "work_mem", "huge_pages"):
        try:
            settings[name] = psql(dsn, f"SHOW {name}")
        except RuntimeError:
            pass
    return {
        "cpu_model": cpu, "cores": os.cpu_count(), "memory_gb": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(), "os": platform.platform(), "python": platform.python_version(),
        "postgres": psql(dsn, "SELECT version()"), "pgbench": pgbv, "peer_versions": vers,
        "pg_settings": settings, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit, "command": command,
        "pinning": os.environ.get("BENCH_PINNING", f"clients: taskset -c {ctx.client_cpu}"),
        "quick": ctx.quick, "seconds_per_run": ctx.seconds, "warmup_seconds": ctx.warmup, "reps": ctx.reps,
        "netem": {k: v for k, v in ctx.netem.items() if k != "netns"},
        "molt_bench": os.path.relpath(MOLT_BIN, ROOT),
    }


def allow_netns_client(dsn, netem):
    """Let the namespace's client address in (trust, like 127.0.0.1) on our throwaway server."""
    hba = os.environ.get("MOLT_TEST_PGDATA", "")
    hba = os.path.join(hba, "pg_hba.conf") if hba else psql(dsn, "SHOW hba_file")
    line = f"host all molt {netem['client_addr']}/32 trust  # bench/lib/netns.sh client\n"
    with open(hba) as f:
        old = f.read()
    if line not in old:
        with open(hba, "w") as f:
            f.write(line + old)
    psql(dsn, "SELECT pg_reload_conf()")


def merge_rerun(path, rerun, order):
    """An --only run replaces its scenarios in the last full result and is
    listed there (the report names it), so the other tables are kept."""
    with open(path) as f:
        prev = json.load(f)
    merged = dict(prev.get("scenarios", {}), **rerun["scenarios"])
    # in the order of scenarios(), so that a new scenario sits by its kin
    prev["scenarios"] = {k: merged[k] for k in order if k in merged}
    prev["scenarios"].update({k: v for k, v in merged.items() if k not in order})
    m = rerun["machine"]
    prev.setdefault("machine", {}).setdefault("reruns", []).append({
        "scenarios": sorted(rerun["scenarios"]), "command": m.get("command"),
        "date": m.get("date"), "git_commit": m.get("git_commit"),
        "total_seconds": m.get("total_seconds")})
    return prev


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated scenario keys")
    ap.add_argument("--out", default=os.path.join(RESULTS, "latest.json"))
    ap.add_argument("--command", default="make bench")
    ap.add_argument("--netem-status", default="", help="JSON file written by bench/lib/netns.sh")
    ap.add_argument("--baseline", default="", help="build directory of another commit (A/B run)")
    a = ap.parse_args()
    dsn = os.environ["MOLT_TEST_DSN"]
    netem = {"ok": False, "error": "not probed"}
    if a.netem_status and os.path.exists(a.netem_status):
        with open(a.netem_status) as f:
            netem = json.load(f)
        if netem.get("ok") and netem.get("server_addr"):
            netem["dsn"] = dsn.replace("127.0.0.1", netem["server_addr"])
            allow_netns_client(dsn, netem)
    with tempfile.TemporaryDirectory(prefix="molt-bench.") as tmp:
        os.chmod(tmp, 0o755)
        ctx = Ctx(dsn, a.quick, tmp, netem)
        t0 = time.time()
        setup_data(dsn)
        result = {"machine": machine(dsn, ctx, a.command), "scenarios": {}}
        only = set(filter(None, a.only.split(",")))
        scs = scenarios(ctx)
        if a.baseline:
            scs = with_baseline(scs, a.baseline)
        for sc in scs:
            if only and sc["key"] not in only:
                continue
            if sc.get("netem") and not sc.get("unavailable"):
                ctx.dsn = netem["dsn"]
            try:
                result["scenarios"][sc["key"]] = run_scenario(ctx, sc)
            finally:
                ctx.dsn = dsn
        result["machine"]["total_seconds"] = round(time.time() - t0, 1)
    if only and not a.baseline and os.path.exists(a.out):
        result = merge_rerun(a.out, result, [sc["key"] for sc in scenarios(ctx)])
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    tmp_out = a.out + ".tmp"
    with open(tmp_out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp_out, a.out)
    log(f"wrote {os.path.relpath(a.out, ROOT)} in {result['machine']['total_seconds']} s")


if __name__ == "__main__":
    main()
