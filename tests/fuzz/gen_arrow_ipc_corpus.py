#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_arrow_ipc_read: the arrow_ipc payloads of
real results (every type of docs/arrow.md's table on PostgreSQL, SQLite's
types, an empty result, a stream of one-row batches), each behind the
harness's first byte (0: one chunk, 1: schema and batches in two chunks,
2: the stream released half-read).

    bash scripts/with_pg.sh bash -c 'PYTHONPATH=python:python/tests \\
        .venv/bin/python tests/fuzz/gen_arrow_ipc_corpus.py'

The outputs are committed; rerun only when changing the seeds.
"""
import hashlib
import os
import pathlib
import sys
import tempfile

from molt_db_adapter import MoltClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fuzz" / "corpus" / "arrow_ipc_read"
WORKER = str(ROOT / "build" / "molt_worker")


def main():
    sys.path.insert(0, str(ROOT / "python" / "tests"))
    from arrow_sql import TYPES_SQL, sqlite_types_db

    dsn = os.environ["MOLT_TEST_DSN"]
    payloads = []
    pg = ["--db", f"default={dsn}", "--pool", "default:allow_privileged_role=true"]
    with MoltClient([WORKER, "--stdio", *pg]) as c:
        payloads.append(c.query(TYPES_SQL, result_format="arrow_ipc").raw)
        payloads.append(c.query("SELECT 1::int4 AS a, 'x'::text AS b WHERE false",
                                result_format="arrow_ipc").raw)
        with c.stream("SELECT g, g::text AS s, ARRAY[g] AS a FROM generate_series(1, 3) g",
                      result_format="arrow_ipc", batch_rows=1) as s:
            payloads.append(b"".join(s.chunks()))
    with tempfile.TemporaryDirectory() as tmp:
        path = sqlite_types_db(os.path.join(tmp, "t.db"))
        with MoltClient([WORKER, "--stdio", "--db", f"default=sqlite:///{path}"]) as c:
            payloads.append(c.query("SELECT i, r, s, b, n FROM t ORDER BY rowid",
                                    result_format="arrow_ipc").raw)
    OUT.mkdir(parents=True, exist_ok=True)
    for raw in payloads:
        for mode in (0, 1, 2):
            seed = bytes([mode]) + bytes(raw)
            (OUT / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


if __name__ == "__main__":
    main()
