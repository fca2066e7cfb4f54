"""make demo: molt_worker serving a small shop table, used from Python with
the public client API (molt_db_adapter.MoltClient) and nothing else.

    python python/demo/worker_demo.py [--dsn DSN] [--rows N]

DSN defaults to sqlite:///.tmp/demo/items.db; `make demo DB=postgres` passes
a throwaway PostgreSQL server's. The worker is `molt_worker`: $MOLT_WORKER_BIN,
the one inside the installed package, or PATH (molt_db_adapter.worker_path).

The first run creates the table demo_items (N rows, default 200000); later
runs find it and leave it as they found it: the demo's one write is undone
before it ends, and the transaction it makes fail changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable, TypeVar

from molt_db_adapter import DbError, InvalidInput, MoltClient, QueryResult

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DSN = "sqlite:///" + os.path.join(ROOT, ".tmp", "demo", "items.db")

# One DDL and one fill statement that SQLite and PostgreSQL both accept.
CREATE = """CREATE TABLE IF NOT EXISTS demo_items (
    id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    category TEXT NOT NULL, price DOUBLE PRECISION NOT NULL, qty INTEGER NOT NULL)"""
FILL = """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
INSERT INTO demo_items (id, sku, name, category, price, qty)
SELECT i, 'SKU-' || i, 'item ' || i,
       CASE i % 5 WHEN 0 THEN 'books' WHEN 1 THEN 'garden' WHEN 2 THEN 'kitchen'
                  WHEN 3 THEN 'toys' ELSE 'tools' END,
       (i * 7919 % 50000) / 100.0, i * 31 % 1000
FROM n"""

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t0) * 1000


def say(title: str, ms: float, r: QueryResult | None = None) -> None:
    """A heading with the round trip as Python saw it and the worker's own
    timings (metrics exec_us: running the statement; decode_us: turning the
    rows into the answer's format)."""
    line = f"\n== {title}\n   {ms:.1f} ms round trip"
    if r is not None:
        m: dict[str, Any] = r.metrics
        line += (f"; in the worker {m.get('exec_us', 0) / 1000:.1f} ms running the query,"
                 f" {m.get('decode_us', 0) / 1000:.1f} ms encoding {m.get('db_row_count', 0)} rows"
                 f" into {m.get('db_bytes_out', 0)} bytes")
    print(line)


def count(c: MoltClient) -> int:
    return int(c.query("SELECT count(*) FROM demo_items").rows[0][0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", default=DEFAULT_DSN)
    ap.add_argument("--rows", type=int, default=200_000)
    a = ap.parse_args()
    if a.dsn.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(a.dsn[len("sqlite://"):]), exist_ok=True)

    cmd = ["molt_worker", "--stdio", "--db", f"default={a.dsn}", "--allow-write", "default"]
    with MoltClient(cmd) as c:
        info = c.ping()
        print(f"molt_worker {info['version']} (pid {info['pid']}) on {a.dsn.split('?')[0]}")

        c.execute(CREATE)
        if count(c) == 0:
            _, ms = timed(lambda: c.execute(FILL, [a.rows]))
            print(f"created demo_items with {a.rows} rows in {ms / 1000:.1f} s (only on the first run)")
        before = count(c)
        print(f"demo_items has {before} rows")

        r, ms = timed(lambda: c.query(
            "SELECT category, count(*) AS n, round(avg(qty), 1) AS avg_qty FROM demo_items"
            " GROUP BY category ORDER BY category", result_format="json", tag="demo.by_category"))
        say("items per category (result_format json)", ms, r)
        for row in r.rows:
            print("  ", row)

        r, ms = timed(lambda: c.query(
            "SELECT id, sku, price FROM demo_items WHERE category = :cat AND price BETWEEN :lo AND :hi"
            " ORDER BY price DESC, id LIMIT 3", {"cat": "kitchen", "lo": 10.0, "hi": 50.0},
            row_shape="objects"))
        say("the three dearest kitchen items between 10 and 50 (named parameters, rows as objects)", ms, r)
        for d in r.dicts():
            print("  ", d)

        r, ms = timed(lambda: c.query("SELECT id, sku, name, category, price, qty FROM demo_items",
                                      max_rows=10_000_000))
        say("the whole table in one answer (msgpack)", ms, r)
        print(f"   {len(r.rows)} rows, {len(r.rows) / (ms / 1000):,.0f} rows a second into Python tuples")

        def stream_all() -> int:
            with c.stream("SELECT id, price FROM demo_items", batch_rows=20_000,
                          max_rows=10_000_000) as s:
                return sum(1 for _ in s)
        n, ms = timed(stream_all)
        say("the same rows streamed, 20000 a frame (c.stream)", ms)
        print(f"   {n} rows iterated as they arrived")

        try:
            import pyarrow  # noqa: F401
        except ImportError:
            print("\n== Arrow skipped: pyarrow is not installed (pip install 'molt-db[arrow]')")
        else:
            r, ms = timed(lambda: c.query("SELECT id, category, price, qty FROM demo_items",
                                          result_format="arrow_ipc", max_rows=10_000_000))
            t = r.to_arrow()
            say("the whole table as an Arrow table (result_format arrow_ipc)", ms, r)
            print(f"   {t.num_rows} rows, columns {t.schema.names}")

        # a transaction whose second statement fails: the first one is undone too
        qty1 = c.query("SELECT qty FROM demo_items WHERE id = $1", [1]).rows[0][0]
        try:
            c.execute(statements=[("UPDATE demo_items SET qty = qty + 100 WHERE id = $1", [1]),
                                  ("INSERT INTO demo_items (id, sku, name, category, price, qty)"
                                   " VALUES ($1, 'SKU-1', 'a copy', 'toys', 1, 1)", [0])])
        except DbError as e:
            after = c.query("SELECT qty FROM demo_items WHERE id = $1", [1]).rows[0][0]
            print(f"\n== a transaction that fails changes nothing\n   the duplicate sku was refused"
                  f" ({e.sqlstate or 'error'}); item 1's qty is {after}, as before ({qty1})")

        # a write that works, and its undo
        _, ms = timed(lambda: c.execute(
            "INSERT INTO demo_items (id, sku, name, category, price, qty) VALUES ($1, $2, $3, $4, $5, $6)",
            [0, "SKU-DEMO", "demo item", "toys", 9.99, 1]))
        say("db_exec: one item added", ms)
        print(f"   now {count(c)} rows; deleting it again:"
              f" {c.execute('DELETE FROM demo_items WHERE id = $1', [0]).rows_affected} row deleted")

        try:
            c.query("DELETE FROM demo_items")
        except (InvalidInput, DbError) as e:
            print(f"\n== db_query is read-only: `DELETE FROM demo_items` was refused ({type(e).__name__})")

        after = count(c)
        print(f"\ndemo_items has {after} rows, as at the start" if after == before
              else f"\ndemo_items has {after} rows, {before} at the start: the demo changed it")
        return 0 if after == before else 1


if __name__ == "__main__":
    sys.exit(main())
