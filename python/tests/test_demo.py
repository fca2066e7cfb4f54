"""python/demo/worker_demo.py (make demo) leaves its data as it found it:
run twice on the same database, the table is the same row for row after each
run, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import pathlib
import sqlite3
import subprocess
import sys

import pytest

from molt_db_adapter import MoltClient

DEMO = pathlib.Path(__file__).resolve().parents[1] / "demo" / "worker_demo.py"
WORKER = os.environ.get("MOLT_WORKER_BIN", "")

pytestmark = pytest.mark.skipif(not os.access(WORKER, os.X_OK), reason="MOLT_WORKER_BIN is not set")


def run_demo(dsn: str) -> str:
    r = subprocess.run([sys.executable, str(DEMO), "--dsn", dsn, "--rows", "500"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_demo_on_sqlite_leaves_the_table_as_found(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "items.db"

    def dump() -> list[str]:
        with sqlite3.connect(db) as con:
            return list(con.iterdump())

    out = run_demo(f"sqlite:///{db}")
    assert "created demo_items with 500 rows" in out
    first = dump()
    out = run_demo(f"sqlite:///{db}")
    assert "created" not in out and "demo_items has 500 rows, as at the start" in out
    assert dump() == first
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*), sum(qty) FROM demo_items").fetchone() == (500, sum(i * 31 % 1000 for i in range(1, 501)))


def test_demo_on_postgres_leaves_the_table_as_found() -> None:
    dsn = os.environ.get("MOLT_TEST_DSN_APP")
    if not dsn:
        pytest.skip("MOLT_TEST_DSN_APP is not set (run under scripts/with_pg.sh)")
    cmd = [WORKER, "--stdio", "--db", f"default={dsn}", "--allow-write", "default"]
    with MoltClient(cmd) as c:
        c.execute("DROP TABLE IF EXISTS demo_items")
        try:
            run_demo(dsn)
            first = c.query("SELECT * FROM demo_items ORDER BY id").rows
            run_demo(dsn)
            assert c.query("SELECT * FROM demo_items ORDER BY id").rows == first
            assert len(first) == 500
        finally:
            c.execute("DROP TABLE IF EXISTS demo_items")
