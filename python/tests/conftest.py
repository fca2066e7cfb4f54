"""Shared test setup: make python/ importable when pytest runs without
PYTHONPATH (scripts/test.sh sets it; a bare `pytest python/tests` does not),
the `pg` fixture, and the `transport` fixture that runs a client suite on
both transports."""

import importlib.util
import os
import pathlib
import sys

import pytest

_PY = str(pathlib.Path(__file__).resolve().parents[1])
# a molt_db_adapter already on PYTHONPATH wins (the ASan run puts one whose
# _host is build-asan's there)
if _PY not in sys.path and importlib.util.find_spec("molt_db_adapter") is None:
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


def _transports():
    """MOLT_TEST_TRANSPORTS (default "worker,inprocess"): the transports the
    client suites run on."""
    names = (os.environ.get("MOLT_TEST_TRANSPORTS") or "worker,inprocess").split(",")
    return [n.strip() for n in names if n.strip()]


@pytest.fixture(params=_transports())
def transport(request, monkeypatch):
    """A client suite on each transport: a module that uses this fixture
    (``pytestmark = pytest.mark.usefixtures("transport")``) and builds its
    clients from worker command lines gets, on "inprocess", the in-process
    clients instead of its module-level ``MoltClient`` / ``AsyncMoltClient``
    (worker_client.py turns the command into the worker's arguments). A test
    marked ``worker_only(reason)`` runs on the worker alone."""
    if request.param == "inprocess":
        marker = request.node.get_closest_marker("worker_only")
        if marker is not None:
            pytest.skip("worker only: " + (marker.args[0] if marker.args else ""))
        try:
            import molt_db_adapter._host  # noqa: F401
        except ImportError as e:
            pytest.skip(f"molt_db_adapter._host is not built ({e})")
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
        import worker_client

        for name, cls in (("MoltClient", worker_client.InProcessFromCmd),
                          ("AsyncMoltClient", worker_client.AsyncInProcessFromCmd)):
            if hasattr(request.module, name):
                monkeypatch.setattr(request.module, name, cls)
    return request.param


def pytest_configure(config):
    config.addinivalue_line("markers", "worker_only(reason): not run on the in-process transport")
