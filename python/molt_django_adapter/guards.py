"""Django's guards on using a connection, applied to offloaded queries as
the ORM applies them to its own: no sync database access on an event loop
(async_unsafe: SynchronousOnlyOperation), and a test's "Database queries to
'alias' are not allowed" (SimpleTestCase, TestCase.databases; Django 5.2
also "Database threaded connections", for a connection another thread
would open)."""

from __future__ import annotations

import sys
from typing import Any

from django.utils.asyncio import async_unsafe

from .replay import on_event_loop


def check_guards(connection: Any) -> None:
    """Raise what Django would raise for a query on connection here."""
    if on_event_loop():   # the async variants run the sync method on the loop on purpose
        _check_test_guard(connection)
    else:
        _check_sync_only(connection)


@async_unsafe
def _check_sync_only(connection: Any) -> None:
    _check_test_guard(connection)
    _check_thread_guard(connection)


def _check_test_guard(connection: Any) -> None:
    # SimpleTestCase replaces connect/cursor of a database a test may not
    # use with a _DatabaseFailure that raises Django's message when called.
    testcases = sys.modules.get("django.test.testcases")
    if testcases is None:
        return
    guard = connection.__dict__.get("cursor")
    if isinstance(guard, getattr(testcases, "_DatabaseFailure", ())):
        guard()


def _check_thread_guard(connection: Any) -> None:
    # Django 5.2's SimpleTestCase also patches BaseDatabaseWrapper's
    # ensure_connection for the test's duration, which raises for a
    # connection not yet open (another thread's: "Database threaded
    # connections ... are not allowed"). Only then is the connection opened
    # here, as Django's cursor() would (never on the event loop: opening a
    # connection there is what async_unsafe forbids).
    from django.db.backends.base.base import BaseDatabaseWrapper

    patched = getattr(BaseDatabaseWrapper.ensure_connection, "__name__", "") == "patched_ensure_connection"
    if patched and connection.connection is None:
        connection.ensure_connection()
