#!/usr/bin/env python3
"""The Django part of `make demo`: the demo project on SQLite with molt_worker.

1. creates .tmp/django_demo/demo.db (migrate + make_demo_data) unless it exists
2. starts `manage.py molt_worker` on .tmp/django_demo/molt.sock
3. starts Django (`manage.py runserver --noreload`) on a free loopback port
4. prints the URLs, a sample response of both endpoints, whether they agree,
   and a few timings of 1,000-item pages
5. stops the server and the worker

    run_demo.py [--items N]     (N: rows of the generated table, default 120000)
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from demo_procs import free_port, stop, unix_listening, wait_until

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MANAGE = [sys.executable, str(HERE / "manage.py")]


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=120_000)
    a = ap.parse_args()
    tmp = ROOT / ".tmp" / "django_demo"
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MOLT_DEMO_SQLITE=str(tmp / "demo.db"), MOLT_DEMO_SOCKET=str(tmp / "molt.sock"),
               MOLT_DEMO_TMP=str(tmp))
    env.pop("MOLT_DEMO_PG_DSN", None)

    print("\n== Django demo (examples/django_demo, Django on SQLite + molt_worker)")
    if not (tmp / "demo.db").exists():
        print(f"  creating {tmp / 'demo.db'} with {a.items} items (once)...", flush=True)
        t0 = time.time()
        subprocess.run(MANAGE + ["migrate", "-v", "0"], env=env, check=True)
        subprocess.run(MANAGE + ["make_demo_data", "--items", str(a.items)], env=env, check=True)
        print(f"  ... {time.time() - t0:.1f} s")
    else:
        print(f"  using {tmp / 'demo.db'} (delete it to regenerate)")

    procs = []
    try:
        sock = str(tmp / "molt.sock")
        worker = subprocess.Popen(MANAGE + ["molt_worker"], env=env)
        procs.append((worker, "molt_worker"))

        wait_until(lambda: unix_listening(sock), worker, "molt_worker")
        print(f"  molt_worker on {sock} (pid {worker.pid}, started by manage.py molt_worker)")

        port = free_port()
        server = subprocess.Popen(MANAGE + ["runserver", f"127.0.0.1:{port}", "--noreload"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append((server, "Django runserver"))
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: get(base + "/baseline/api/items?limit=1"), server, "Django runserver")
        q = "?limit=2&status=active&q=lamp"
        print(f"  Django on {base}:")
        print(f"    {base}/baseline/api/items{q}   (ORM + JsonResponse)")
        print(f"    {base}/offload/api/items{q}    (rows' JSON written by molt_worker)")
        bodies = {}
        for kind in ("baseline", "offload"):
            status, body = get(f"{base}/{kind}/api/items{q}")
            bodies[kind] = body
            print(f"\n  GET /{kind}/api/items{q} -> {status}\n{body.decode()}")
        same = json.loads(bodies["baseline"]) == json.loads(bodies["offload"])
        print(f"\n  same JSON values: {same}")
        page = "api/items?user_id=1&limit=1000"
        print(f"\n  GET /.../{page} (runserver, one client, 10 requests each, alternating;"
              " `make bench` measures under gunicorn):")
        for kind in ("baseline", "offload", "baseline", "offload"):
            t0 = time.perf_counter()
            for _ in range(10):
                get(f"{base}/{kind}/{page}")
            print(f"    /{kind}/: {(time.perf_counter() - t0) / 10 * 1000:.1f} ms per request")
        if not same:
            sys.exit("demo: the two endpoints disagree")
    finally:
        print()
        for p, name in reversed(procs):
            print(f"  stopped {name} (exit {stop(p)})")


if __name__ == "__main__":
    main()
