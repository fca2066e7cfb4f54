"""The Django project for the adapter's tests: settings (project/settings.py),
tables created and filled on every database at session start, committed
(the worker reads through its own connections), and the parity report
written at the end."""

import os
import pathlib
import shutil
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

_expected = os.environ.get("MOLT_EXPECT_DJANGO")
if _expected and not django.get_version().startswith(_expected + "."):
    raise RuntimeError(f"this run is for Django {_expected} but imported {django.get_version()}")

from django.conf import settings  # noqa: E402

from parity.data import create_schema, fill  # noqa: E402

WORKER_BIN = settings.MOLT_DB["WORKER_BIN"]
ROOT = pathlib.Path(settings.ROOT)
#: (shape, database/mode, events) of every parity run, for the report
REPORT: list = []
#: the databases the tests run on (the other aliases of project/settings.py
#: are for test_parity's USE_TZ mode and test_connection_settings)
ALIASES = [a for a in ("default", "pg") if a in settings.DATABASES]

if not os.path.exists(WORKER_BIN):
    pytest.skip(f"{WORKER_BIN} is not built", allow_module_level=True)

#: MOLT_DB["TRANSPORT"] is "inprocess" (project/settings.py): what only a
#: molt_worker process has is skipped, each with its reason
IN_PROCESS = settings.MOLT_DB["TRANSPORT"] == "inprocess"
WORKER_ONLY = {
    "test_safety.py::test_worker_missing": "no worker binary is involved in process",
    "test_safety.py::test_worker_killed_is_restarted": "kills the worker process",
    "test_safety.py::test_spawned_worker_gets_dsns_from_a_private_file": "no worker command line",
    "test_async.py::test_a_loop_that_ends_takes_its_worker_along": "counts worker processes",
    "test_connection_settings.py::test_a_socket_worker": "MOLT_DB['SOCKET'] is a worker's",
}


def pytest_collection_modifyitems(config, items):
    if not IN_PROCESS:
        return
    for item in items:
        for key, why in WORKER_ONLY.items():
            if key in item.nodeid:
                item.add_marker(pytest.mark.skip(reason="in process: " + why))


@pytest.fixture(scope="session", autouse=True)
def data():
    for alias in ALIASES:
        create_schema(alias)
        fill(alias)
    yield
    from django.db import connections

    from molt_django_adapter import close_clients

    close_clients()
    connections.close_all()
    if not os.environ.get("MOLT_DJANGO_SQLITE"):   # the settings made a temporary directory
        shutil.rmtree(os.path.dirname(settings.SQLITE_PATH), ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    """The parity report: what ran in the worker and what fell back, and why;
    also written to .tmp/django-parity-<django version>.txt."""
    if not REPORT:
        return
    lines = [f"molt_django_adapter parity report (Django {django.get_version()})"]
    offloaded = fell_back = 0
    for name, label, events in REPORT:
        if not events:
            lines.append(f"  {label:15} {name:28} no query")
        for e in events:
            if e.offloaded:
                offloaded += 1
                lines.append(f"  {label:15} {name:28} worker{'  (' + e.reason + ')' if e.reason else ''}")
            else:
                fell_back += 1
                lines.append(f"  {label:15} {name:28} ORM: {e.reason}")
    lines.append(f"queries: {offloaded} in the worker, {fell_back} fell back to the ORM")
    out = ROOT / ".tmp" / f"django-parity-{django.get_version()}.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    terminalreporter.write_line(f"{lines[-1]}; report: {out}")
    for line in lines:
        if " ORM: " in line:
            terminalreporter.write_line(line)
