"""Shared test setup: make python/ importable when pytest runs without
PYTHONPATH (scripts/test.sh sets it; a bare `pytest python/tests` does not),
and the `pg` fixture."""

import os
import pathlib
import sys

import pytest

_PY = str(pathlib.Path(__file__).resolve().parents[1])
if _PY not in sys.path:
    sys.path.insert(0, _PY)


@pytest.fixture
def pg():
    """An autocommit psycopg connection to the harness's server as its
    superuser, to look at or set up what a test needs (pg_stat_activity,
    tables). Test files that need more setup define their own."""
    dsn = os.environ.get("MOLT_TEST_DSN")
    if not dsn:
        pytest.skip("MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)")
    psycopg = pytest.importorskip("psycopg")
    con = psycopg.connect(dsn, autocommit=True)
    yield con
    con.close()


def pytest_collection_modifyitems(config, items):
    """With MOLT_WORKER_BIN=molt_host_bridge, skip what only molt_worker's
    process does (host_bridge_skips.py says which and why)."""
    bin_ = os.environ.get("MOLT_WORKER_BIN") or ""
    if os.path.basename(bin_) != "molt_host_bridge":
        return
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import host_bridge_skips

    for item in items:
        why = host_bridge_skips.reason(item.nodeid)
        if why:
            item.add_marker(pytest.mark.skip(reason=why))
