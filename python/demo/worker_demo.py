"""make demo: a SQLite demo database served by molt_worker, queried from
Python in json, msgpack and Arrow IPC, with timings.

    python python/demo/worker_demo.py [--worker build/molt_worker] [--db PATH] [--rows N]

Creates PATH (default .tmp/demo/items.db) with an `items` table when it is
missing, starts `molt_worker --stdio` on it, runs a few real queries and
prints what came back and how long it took. Needs the msgpack package
(pyarrow for the Arrow part; skipped with a note when absent).
"""
import argparse
import datetime
import json
import os
import random
import sqlite3
import struct
import subprocess
import sys
import time

import msgpack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CATEGORIES = ["books", "garden", "kitchen", "toys", "electronics", "sports",
              "music", "office", "outdoor", "pets", "tools", "beauty"]
ADJ = ["red", "compact", "deluxe", "eco", "classic", "smart", "mini", "pro",
       "vintage", "wireless", "heavy-duty", "organic"]
NOUN = ["lamp", "kettle", "drill", "novel", "racket", "speaker", "planter",
        "notebook", "blender", "tent", "leash", "brush", "guitar", "chair"]


def make_db(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    con = sqlite3.connect(tmp)
    con.executescript("""
        create table items(
            id integer primary key,
            sku text not null unique,
            name text not null,
            category text not null,
            price real not null,
            qty integer not null,
            rating real,
            active integer not null,
            created_at text not null,
            attrs text);
    """)
    rnd = random.Random(42)
    t0 = datetime.datetime(2022, 1, 1)
    def gen():
        for i in range(1, rows + 1):
            cat = rnd.choice(CATEGORIES)
            yield (i, f"SKU-{i:07d}", f"{rnd.choice(ADJ)} {rnd.choice(NOUN)}", cat,
                   round(rnd.uniform(0.5, 500.0), 2), rnd.randrange(0, 1000),
                   round(rnd.uniform(1, 5), 1) if rnd.random() > 0.1 else None,
                   1 if rnd.random() > 0.05 else 0,
                   (t0 + datetime.timedelta(minutes=rnd.randrange(0, 1_000_000))).isoformat(),
                   json.dumps({"color": rnd.choice(ADJ), "weight_g": rnd.randrange(10, 5000)}))
    con.executemany("insert into items values (?,?,?,?,?,?,?,?,?,?)", gen())
    con.execute("create index items_category on items(category, price)")
    con.commit()
    con.close()
    os.replace(tmp, path)


class Worker:
    def __init__(self, binary, db):
        self.p = subprocess.Popen([binary, "--stdio", "--db", f"default=sqlite://{db}",
                                   "--allow-write", "default"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 1

    def call(self, entry, payload=None, **env):
        rid = self.next_id
        self.next_id += 1
        msg = {"request_id": rid, "entry": entry, **env}
        if payload is not None:
            msg["payload"] = msgpack.packb(payload, use_bin_type=True)
        body = msgpack.packb(msg, use_bin_type=True)
        self.p.stdin.write(struct.pack("<I", len(body)) + body)
        self.p.stdin.flush()
        parts = []
        while True:
            head = self.p.stdout.read(4)
            if len(head) < 4:
                raise RuntimeError("worker closed stdout")
            (n,) = struct.unpack("<I", head)
            resp = msgpack.unpackb(self.p.stdout.read(n), raw=False, timestamp=3)
            if resp.get("more"):
                parts.append(resp)
                continue
            if resp["status"] != "Ok":
                raise RuntimeError(f"{resp['status']}: {resp.get('error')}")
            resp["parts"] = parts
            return resp

    def close(self):
        self.p.stdin.close()
        return self.p.wait(10)


def timed(label, fn):
    t0 = time.perf_counter()
    out = fn()
    ms = (time.perf_counter() - t0) * 1000
    return out, ms


def show(title, ms, resp, extra=""):
    m = resp.get("metrics", {})
    print(f"\n== {title}  ({ms:.1f} ms round trip; worker exec {m.get('exec_us', 0) / 1000:.1f} ms,"
          f" encode {m.get('decode_us', 0) / 1000:.1f} ms, {m.get('db_row_count', 0)} rows,"
          f" {m.get('db_bytes_out', 0)} payload bytes){extra}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", default=os.environ.get("MOLT_WORKER_BIN",
                                                       os.path.join(ROOT, "build", "molt_worker")))
    ap.add_argument("--db", default=os.path.join(ROOT, ".tmp", "demo", "items.db"))
    ap.add_argument("--rows", type=int, default=200_000)
    a = ap.parse_args()

    if not os.path.exists(a.db):
        _, ms = timed("create", lambda: make_db(a.db, a.rows))
        print(f"created {a.db}: {a.rows} items in {ms / 1000:.1f} s")
    con = sqlite3.connect(a.db)
    n = con.execute("select count(*) from items").fetchone()[0]
    con.close()
    print(f"demo database {a.db}: items has {n} rows")

    w = Worker(a.worker, a.db)
    r, ms = timed("ping", lambda: w.call("ping"))
    info = msgpack.unpackb(r["payload"])
    print(f"molt_worker {info['version']} (pid {info['pid']}) answered ping in {ms:.2f} ms")

    # 1. an aggregate, json
    r, ms = timed("agg", lambda: w.call("db_query", {
        "sql": "select category, count(*) as n, round(avg(price), 2) as avg_price "
               "from items where active = 1 group by category order by n desc",
        "result_format": "json", "tag": "demo.by_category"}))
    show("items per category (json)", ms, r)
    for row in json.loads(r["payload"])["rows"][:5]:
        print("   ", row)

    # 2. named parameters, objects, msgpack
    r, ms = timed("top", lambda: w.call("db_query", {
        "sql": "select id, sku, name, price, rating from items "
               "where category = :cat and price between :lo and :hi "
               "order by rating desc, price limit 5",
        "params": {"mode": "named", "values": [
            {"name": "cat", "value": "kitchen"}, {"name": "hi", "value": 50.0},
            {"name": "lo", "value": 10.0}]},
        "result_format": "msgpack", "row_shape": "objects"}))
    show("best-rated kitchen items between 10 and 50 (msgpack, row_shape objects)", ms, r)
    for row in msgpack.unpackb(r["payload"])["rows"]:
        print("   ", row)

    # 3. a large result, msgpack, all rows
    r, ms = timed("all", lambda: w.call("db_query", {
        "sql": "select id, sku, name, category, price, qty, rating, created_at from items",
        "result_format": "msgpack", "max_rows": 1_000_000}))
    rows = msgpack.unpackb(r["payload"])["rows"]
    show("the whole table (msgpack)", ms, r, f"  -> {len(rows) / (ms / 1000):,.0f} rows/s into Python")

    # 4. the same, streamed in frames of 20k rows
    r, ms = timed("stream", lambda: w.call("db_query", {
        "sql": "select id, sku, price from items", "result_format": "msgpack",
        "stream": True, "batch_rows": 20000, "max_rows": 1_000_000}))
    show("streamed (msgpack, 20k rows a frame)", ms, r,
         f"  -> {len(r['parts'])} frames before the final one")

    # 5. Arrow IPC
    try:
        import pyarrow.ipc as ipc
    except ImportError:
        ipc = None
        print("\n== Arrow IPC skipped: pyarrow is not installed")
    if ipc:
        r, ms = timed("arrow", lambda: w.call("db_query", {
            "sql": "select id, category, price, qty, rating from items",
            "result_format": "arrow_ipc", "max_rows": 1_000_000}))
        t = ipc.open_stream(r["payload"]).read_all()
        show("the whole table (arrow_ipc) -> pyarrow.Table", ms, r,
             f"  -> {t.num_rows} rows, schema {t.schema.types}")
        import pyarrow.compute as pc
        print(f"    mean price {pc.mean(t.column('price')).as_py():.2f}, "
              f"total qty {pc.sum(t.column('qty')).as_py()}")

    # 6. a write, in one transaction
    r, ms = timed("exec", lambda: w.call("db_exec", {
        "allow_write": True, "statements": [
            {"sql": "update items set qty = qty - 1 where id = $1 and qty > 0",
             "params": {"mode": "positional", "values": [1]}},
            {"sql": "update items set price = round(price * 1.1, 2) where category = 'toys' "
                    "and rating >= 4.5"}]}))
    res = json.loads(r["payload"])["results"]
    show("db_exec: two updates in one transaction", ms, r,
         f"  -> rows_affected {[x['rows_affected'] for x in res]}")

    # 7. the read-only guarantee
    try:
        w.call("db_query", {"sql": "delete from items"})
    except RuntimeError as e:
        print(f"\n== db_query refuses writes: {e}")

    st = msgpack.unpackb(w.call("stats")["payload"])
    print(f"\nworker stats: {st['worker']}")
    rc = w.close()
    print(f"molt_worker exited with {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
