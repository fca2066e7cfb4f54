#!/usr/bin/env python3
"""Django contenders (bench/contenders.md), on the demo project
examples/django_demo and its PostgreSQL data (bench/runner.py loads it).

    django_peer.py list   --mode baseline|offload --dsn DSN --seconds S [--concurrency 8 --workers 2]
    django_peer.py values --mode orm|offload --dsn DSN --seconds S     # .values() of 10k rows
    django_peer.py models --mode orm|offload --dsn DSN --seconds S     # 10k model instances
        (values/models: --decoder python builds the offloaded rows without the C decoder;
         --db sqlite reads a SQLite file of the demo's data instead of PostgreSQL)
    offload: --transport inprocess runs molt_db in the Django processes
        (MOLT_DB["TRANSPORT"] = "inprocess") instead of beside them in molt_worker

list: gunicorn (gthread: --workers processes of --threads threads) serves
the demo; for offload, `manage.py
molt_worker` runs beside it. An asyncio load generator keeps --concurrency
requests in flight on GET /{baseline,offload}/api/items?user_id=1&limit=1000
(a new connection each, `Connection: close`). ops are
requests; cpu_seconds is the CPU of gunicorn's processes, the worker and this
process during the measured part (the server side is most of it). check: the
page's sums and counts, from the last response.

values/models: in this process, the same QuerySet through the ORM, or under
molt_django_adapter's offloading() (read by molt_worker, rows handed to
Django's converters). ops are rows.
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Meter, emit, latency_summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "django_demo"
sys.path.insert(0, str(DEMO))
from demo_procs import free_port, stop, unix_listening, wait_until  # noqa: E402
LIST_PATH = "/api/items?user_id=1&limit=1000"
QS_ROWS = 10_000


def demo_env(a, sock):
    env = dict(os.environ, MOLT_DEMO_SOCKET=sock,
               PYTHONPATH=os.pathsep.join([str(DEMO), str(ROOT / "python")]),
               DJANGO_SETTINGS_MODULE="demo_project.settings")
    if a.db == "sqlite":
        env.pop("MOLT_DEMO_PG_DSN", None)
        env["MOLT_DEMO_SQLITE"] = sqlite_demo(env)
    else:
        env["MOLT_DEMO_PG_DSN"] = a.dsn
    if a.transport == "inprocess":
        env["MOLT_DEMO_TRANSPORT"] = "inprocess"
    return env


def sqlite_demo(env):
    """A SQLite file with the demo's data (QS_ROWS items, the same generator
    and seed as the PostgreSQL data), made once."""
    path = ROOT / ".tmp" / "bench-django" / f"demo-{QS_ROWS}.db"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        part.unlink(missing_ok=True)
        env = dict(env, MOLT_DEMO_SQLITE=str(part))
        for args in (["migrate", "-v", "0"], ["make_demo_data", "--items", str(QS_ROWS)]):
            subprocess.run([sys.executable, str(DEMO / "manage.py"), *args], env=env, check=True,
                           stdout=sys.stderr)
        part.rename(path)
    return str(path)


def start_worker(env, sock, conns):
    """`manage.py molt_worker` with a pool of `conns` PostgreSQL connections."""
    p = subprocess.Popen([sys.executable, str(DEMO / "manage.py"), "molt_worker", "--socket", sock,
                          "--", "--pool", f"default:max_conns={conns}"], env=env, stdout=sys.stderr)
    wait_until(lambda: unix_listening(sock), p, "manage.py molt_worker")
    return p


def proc_cpu(pids):
    """user+sys seconds of these processes and their children's, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except OSError:
            pass
    return total / tick


def gunicorn_pids(master):
    """The master and its workers (children found by their parent pid)."""
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(d))
            except OSError:
                pass
    return pids


# ---------------------------------------------------------------- list endpoint

async def one_request(port, path):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    data = await r.read()
    w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b" ", 2)[1] == b"200", body


async def load(port, path, concurrency, seconds):
    lat, errors, last = [], 0, None
    stop_at = time.perf_counter() + seconds

    async def client():
        nonlocal errors, last
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter_ns()
            try:
                ok, body = await one_request(port, path)
            except OSError:
                ok, body = False, None
            lat.append(time.perf_counter_ns() - t0)
            if ok:
                last = body
            else:
                errors += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return lat, errors, last


def page_check(body):
    doc = json.loads(body)
    items = doc["items"]
    return {"items": len(items), "sum_id": sum(i["id"] for i in items),
            "sum_amount_cents": sum(int(Decimal(i["amount"]) * 100) for i in items),
            "n_color": sum(i["color"] is not None for i in items),
            "next_cursor": doc["next_cursor"], "counts": doc["counts"]}


def run_list(a):
    tmp = tempfile.mkdtemp(prefix="django-bench.")
    sock = os.path.join(tmp, "molt.sock")
    env = demo_env(a, sock)
    procs = []
    try:
        if a.mode == "offload" and a.transport == "worker":
            # as many server connections as the baseline's threads hold (CONN_MAX_AGE)
            procs.append(start_worker(env, sock, a.workers * a.threads))
        port = free_port()
        g = subprocess.Popen([sys.executable, "-m", "gunicorn", "demo_project.wsgi:application",
                              "--workers", str(a.workers), "--worker-class", "gthread",
                              "--threads", str(a.threads),
                              "--bind", f"127.0.0.1:{port}", "--backlog", "1024", "--log-level", "warning"],
                             env=env, cwd=str(DEMO), stdout=sys.stderr)
        procs.append(g)
        path = f"/{a.mode}{LIST_PATH}"
        wait_until(lambda: asyncio.run(one_request(port, path)), g, "gunicorn")
        asyncio.run(load(port, path, a.concurrency, a.warmup))  # warm every worker's connections
        pids = gunicorn_pids(g.pid) + [p.pid for p in procs if p is not g]
        c0 = proc_cpu(pids)
        with Meter() as m:
            lat, errors, last = asyncio.run(load(port, path, a.concurrency, a.seconds))
        server_cpu = proc_cpu(pids) - c0
        emit(ops=len(lat), seconds=m.seconds, cpu_seconds=m.cpu + server_cpu,
             latencies_us=latency_summary(lat), errors=errors, check=page_check(last))
    finally:
        for p in reversed(procs):
            stop(p)


# ---------------------------------------------------------------- QuerySets

def run_queryset(a):
    tmp = tempfile.mkdtemp(prefix="django-bench.")
    sock = os.path.join(tmp, "molt.sock")
    env = demo_env(a, sock)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT / "python"))
    worker = start_worker(env, sock, 1) if a.mode == "offload" and a.transport == "worker" else None
    try:
        import contextlib

        import django
        django.setup()
        from catalog.models import Item
        from molt_db_adapter import c_rows
        from molt_django_adapter import capture_events, offloading

        if a.decoder == "python":
            c_rows.decoder = None
        elif a.mode == "offload" and c_rows.decoder is None:
            sys.exit("molt_db_adapter._rows is not built (make build): no C row decoder to measure")

        if a.kind == "values":
            def fetch():
                return [(r["id"], r["price"]) for r in
                        Item.objects.order_by("id").values("id", "uuid", "title", "price", "created_at",
                                                           "is_public", "meta")[:QS_ROWS]]
        else:
            def fetch():
                return [(o.id, o.price) for o in Item.objects.order_by("id")[:QS_ROWS]]
        scope = offloading if a.mode == "offload" else contextlib.nullcontext

        def rounds(seconds):
            rows, stop_at = 0, time.perf_counter() + seconds
            while True:
                with scope():
                    got = fetch()
                rows += len(got)
                if time.perf_counter() >= stop_at:
                    return rows, got

        rounds(a.warmup)
        with Meter() as m:
            rows, got = rounds(a.seconds)
        with capture_events() as events, scope():
            fetch()
        offloaded = all(e.offloaded for e in events) and bool(events)
        errors = 0 if offloaded == (a.mode == "offload") else 1
        if errors:
            print(f"expected offloaded={a.mode == 'offload'}, events: {events}", file=sys.stderr)
        emit(ops=rows, seconds=m.seconds, cpu_seconds=m.cpu, rows=rows, errors=errors,
             check={"rows": len(got), "sum_id": sum(r[0] for r in got),
                    "sum_price_cents": int(sum(r[1] for r in got) * 100)})
    finally:
        if worker is not None:
            stop(worker)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["list", "values", "models"])
    p.add_argument("--mode", required=True, choices=["baseline", "offload", "orm"])
    p.add_argument("--dsn", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--decoder", choices=["c", "python"], default="c",
                   help="values/models offload: rows built by the C decoder or the pure-Python one")
    p.add_argument("--transport", choices=["worker", "inprocess"], default="worker",
                   help="offload: through molt_worker, or molt_db in the Django process")
    p.add_argument("--db", choices=["pg", "sqlite"], default="pg",
                   help="values/models: the demo's data on PostgreSQL (--dsn) or in a SQLite file")
    a = p.parse_args()
    (run_list if a.kind == "list" else run_queryset)(a)


if __name__ == "__main__":
    main()
