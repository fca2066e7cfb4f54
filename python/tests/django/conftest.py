"""The Django project for the adapter's tests: settings (project/settings.py),
tables created and filled on every database at session start, committed
(the worker reads through its own connections), and the parity report
written at the end."""

import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from parity.data import create_schema, fill  # noqa: E402

WORKER_BIN = settings.MOLT_DB["WORKER_BIN"]
ALIASES = list(settings.DATABASES)

if not os.path.exists(WORKER_BIN):
    pytest.skip(f"{WORKER_BIN} is not built", allow_module_level=True)


@pytest.fixture(scope="session", autouse=True)
def data():
    for alias in ALIASES:
        create_schema(alias)
        fill(alias)
    yield
    from molt_django_adapter import close_clients

    close_clients()
