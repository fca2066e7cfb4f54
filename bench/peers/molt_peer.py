"""molt peer: Python -> molt_db_adapter -> molt_worker -> PostgreSQL.

pingpong: one call at a time over stdio (the client spawns the worker);
          --client sync (MoltClient) or async (AsyncMoltClient); inprocess
          and inprocess-async: InProcessClient / AsyncInProcessClient (molt_db
          in this process through the _host extension, no worker).
pk:       AsyncMoltClient attached with socket_path to `molt_worker --socket`,
          --inflight asyncio tasks on its one connection, msgpack results;
          the worker's pool has --conns connections. --client inprocess-async:
          the same tasks on AsyncInProcessClient.
bulk:     one db_query of the bulk rows over stdio, --format arrow_ipc
          (into a pyarrow.Table) or msgpack (into Python tuples, by the C
          row decoder, or with --decoder python the pure-Python one; with
          --shape dicts into dicts). --client inprocess: on InProcessClient.
many:     MoltClient.executemany of an INSERT over stdio, in calls of 10 000
          rows (the most one db_exec runs; each call its own transaction).
copyin:   MoltClient.copy_in of the rows over stdio (the copy_in entry: one
          COPY FROM STDIN in one transaction).

The worker is this process's child, so the runner's wait4 figure for this
contender includes the worker's CPU; `cpu_seconds` is this Python process
only, and `worker_cpu_seconds` is the worker's user+sys CPU over the same
measured part (from /proc/PID/stat).
"""
import asyncio
import os
import socket
import subprocess
import sys
import time

from _common import (PINGPONG_CHECK, PINGPONG_SQL_PG, PK_CHECK_AIDS, PK_SQL_PG, WRITE_COLUMNS, Meter,
                     apingpong, arrow_check, bulk_sql, emit, inflight, latency_summary, parser,
                     pingpong, privileged_role_flags, rows_check, write_check, write_check_sql,
                     write_create_sql, write_insert_sql, write_rows, write_table)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from molt_db_adapter import AsyncInProcessClient, AsyncMoltClient, InProcessClient, MoltClient, c_rows  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """user+sys seconds of a live process, all threads (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


class WorkerMeter(Meter):
    """Meter that also takes the worker process's CPU over the measured part."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        self.wc0 = proc_cpu(self.pid)
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.worker_cpu = proc_cpu(self.pid) - self.wc0


def worker_args(a, transport):
    return [a.worker, *transport, "--db", f"default={a.dsn}",
            "--pool", f"default:max_conns={a.conns}", "--pool", f"default:min_conns={a.conns}",
            *privileged_role_flags(a.worker)]


def pingpong_sync(a):
    with MoltClient(worker_args(a, ["--stdio"])) as c:
        def q(x):
            return c.query(PINGPONG_SQL_PG, [x]).rows[0][0]

        q(1)  # starts the worker: worker_pid is known from here on
        m = WorkerMeter(c.worker_pid)
        ops, lat, bad = pingpong(a, q, m)
        check = [q(x) for x in PINGPONG_CHECK]
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, worker_cpu_seconds=m.worker_cpu,
         latencies_us=latency_summary(lat), errors=bad, check=check)


async def pingpong_async(a):
    async with AsyncMoltClient(worker_args(a, ["--stdio"])) as c:
        async def q(x):
            return (await c.query(PINGPONG_SQL_PG, [x])).rows[0][0]

        await q(1)  # starts the worker: worker_pid is known from here on
        m = WorkerMeter(c.worker_pid)
        ops, lat, bad = await apingpong(a, q, m)
        check = [await q(x) for x in PINGPONG_CHECK]
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, worker_cpu_seconds=m.worker_cpu,
         latencies_us=latency_summary(lat), errors=bad, check=check)


def host_args(a):
    """worker_args() without the program and the transport: the in-process host's."""
    return worker_args(a, [])[1:]


def pingpong_inprocess(a):
    with InProcessClient(host_args(a)) as c:
        def q(x):
            return c.query(PINGPONG_SQL_PG, [x]).rows[0][0]

        m = Meter()
        ops, lat, bad = pingpong(a, q, m)
        check = [q(x) for x in PINGPONG_CHECK]
    # the host runs in this process (on the calling thread): cpu_seconds counts it
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, latencies_us=latency_summary(lat),
         errors=bad, check=check)


async def pingpong_inprocess_async(a):
    async with AsyncInProcessClient(host_args(a)) as c:
        async def q(x):
            return (await c.query(PINGPONG_SQL_PG, [x])).rows[0][0]

        m = Meter()
        ops, lat, bad = await apingpong(a, q, m)
        check = [await q(x) for x in PINGPONG_CHECK]
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, latencies_us=latency_summary(lat),
         errors=bad, check=check)


async def pk_inprocess(a):
    async with AsyncInProcessClient(host_args(a)) as c:
        async def one(aid):
            return (await c.query(PK_SQL_PG, [aid], result_format="msgpack")).rows[0][0]

        m = Meter()
        ops, lat = await inflight(a, one, m)
        check = [await one(aid) for aid in PK_CHECK_AIDS]
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, latencies_us=latency_summary(lat), check=check)


def start_socket_worker(a):
    path = os.path.abspath(f"molt-bench-{os.getpid()}.sock")
    proc = subprocess.Popen(worker_args(a, ["--socket", path]), stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not listening(path):  # the file exists from bind(); connects work from listen()
        if proc.poll() is not None:
            raise SystemExit(f"molt_worker --socket exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("molt_worker did not listen on its socket within 10 s")
        time.sleep(0.01)
    return proc, path


def listening(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def stop_worker(proc):
    proc.terminate()
    try:
        code = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    if code != 0:
        raise SystemExit(f"molt_worker exited with status {code} after SIGTERM")


async def pk(a):
    proc, path = start_socket_worker(a)
    try:
        async with AsyncMoltClient(socket_path=path) as c:
            async def one(aid):
                return (await c.query(PK_SQL_PG, [aid], result_format="msgpack")).rows[0][0]

            m = WorkerMeter(proc.pid)
            ops, lat = await inflight(a, one, m)
            check = [await one(aid) for aid in PK_CHECK_AIDS]
    finally:
        stop_worker(proc)
    emit(ops=ops, seconds=m.seconds, cpu_seconds=m.cpu, worker_cpu_seconds=m.worker_cpu,
         latencies_us=latency_summary(lat), check=check)


def use_decoder(name):
    """c: the _rows extension must be built (no silent fallback); python:
    turn it off for this process."""
    if name == "python":
        c_rows.decoder = None
    elif c_rows.decoder is None:
        sys.exit("molt_db_adapter._rows is not built (make build): no C row decoder to measure")


def bulk(a):
    use_decoder(a.decoder)
    sql = bulk_sql(a.limit)
    n = a.limit or 1000000
    inprocess = a.client == "inprocess"
    if inprocess:
        client = InProcessClient(host_args(a) + ["--max-rows", str(n)])
    else:
        client = MoltClient(worker_args(a, ["--stdio", "--max-rows", str(n)]))
    with client as c:
        def fetch(q, rows):
            res = c.query(q, result_format=a.format, max_rows=rows)
            if a.format == "arrow_ipc":
                return res.to_arrow()
            return res.dicts() if a.shape == "dicts" else res.rows

        fetch(bulk_sql(min(n, 1000)), 1000)
        # in process: the host's loop thread is this process's, in m.cpu
        with (Meter() if inprocess else WorkerMeter(c.worker_pid)) as m:
            data = fetch(sql, n)
    if a.format == "arrow_ipc":
        nrows, check = data.num_rows, arrow_check(data)
    else:
        nrows = len(data)
        check = rows_check([tuple(d.values()) for d in data] if a.shape == "dicts" else data)
    worker = {} if inprocess else {"worker_cpu_seconds": m.worker_cpu}
    emit(ops=nrows, rows=nrows, seconds=m.seconds, cpu_seconds=m.cpu, **worker, check=check)


#: rows per executemany call: the most one db_exec `statements` list holds
MANY_CHUNK = 10000


def write(a):
    table = write_table()
    insert = write_insert_sql(table)
    with MoltClient(worker_args(a, ["--stdio", "--allow-write", "default"])) as c:
        def run(rows):
            if a.mode == "many":
                for k in range(0, len(rows), MANY_CHUNK):
                    c.executemany(insert, rows[k:k + MANY_CHUNK])
            else:
                c.copy_in(table, rows, columns=WRITE_COLUMNS)

        c.execute(write_create_sql(table))
        run(write_rows(1000, a.rows + 1))  # warm-up, then emptied
        c.execute(f"TRUNCATE {table}")
        rows = write_rows(a.rows)
        with WorkerMeter(c.worker_pid) as m:
            run(rows)
        check = write_check(c.query(write_check_sql(table), result_format="msgpack").rows[0])
        c.execute(f"DROP TABLE {table}")
    emit(ops=a.rows, rows=a.rows, seconds=m.seconds, cpu_seconds=m.cpu,
         worker_cpu_seconds=m.worker_cpu, check=check)


def main():
    p = parser(["pingpong", "pk", "bulk", "many", "copyin"])
    p.add_argument("--worker", required=True, help="the molt_worker binary")
    p.add_argument("--client", choices=["sync", "async", "inprocess", "inprocess-async"], default="sync",
                   help="pingpong, pk, bulk (sync or inprocess): which client")
    p.add_argument("--format", choices=["arrow_ipc", "msgpack"], default="msgpack", help="bulk: result format")
    p.add_argument("--decoder", choices=["c", "python"], default="c", help="bulk: the row decoder (c_rows.py)")
    p.add_argument("--shape", choices=["tuples", "dicts"], default="tuples",
                   help="bulk, msgpack: result.rows (tuples) or result.dicts()")
    a = p.parse_args()
    if a.mode == "pingpong":
        if a.client == "sync":
            pingpong_sync(a)
        elif a.client == "inprocess":
            pingpong_inprocess(a)
        elif a.client == "inprocess-async":
            asyncio.run(pingpong_inprocess_async(a))
        else:
            asyncio.run(pingpong_async(a))
    elif a.mode == "pk":
        asyncio.run(pk_inprocess(a) if a.client == "inprocess-async" else pk(a))
    elif a.mode in ("many", "copyin"):
        write(a)
    else:
        bulk(a)


if __name__ == "__main__":
    main()
