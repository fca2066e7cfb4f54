"""Every shape of parity/shapes.py run through the ORM and offloaded, on
every database, with USE_TZ on and off: the snapshots (types included)
must be equal, and every query of a shape must have run in the worker
unless the shape names the reason it stays on the ORM for that vendor.
The decisions go to the report (conftest.py)."""

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import override_settings

from molt_django_adapter import capture_events, offloading
from parity.compare import outcome
from parity.shapes import SHAPES

from conftest import ALIASES, REPORT

# the reason given while the worker lacks a function of WORKER_DJANGO_FUNCTIONS
PENDING = "is not in this worker yet"
# (alias, USE_TZ, PostgreSQL PARAM_BINDING)
MODES = [(alias, tz, "client") for alias in ALIASES for tz in (True, False)]
MODES += [("pg", tz, "server") for tz in (True, False) if "pg" in ALIASES]
MODES += [("pg_chicago", True, "client")] if "pg" in ALIASES else []   # DATABASES TIME_ZONE


def _mode_id(mode):
    alias, tz, binding = mode
    return f"{alias}-{'tz' if tz else 'notz'}" + ("-server" if binding == "server" else "")


@pytest.fixture(scope="module", params=MODES, ids=[_mode_id(m) for m in MODES])
def mode(request):
    alias, use_tz, binding = request.param
    with override_settings(USE_TZ=use_tz, MOLT_DB={**settings.MOLT_DB, "PARAM_BINDING": binding}):
        yield request.param


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_shape(mode, shape):
    alias, use_tz, binding = mode
    vendor = connections[alias].vendor
    with offloading(False):
        expected = outcome(shape.run, alias)
    with capture_events() as events, offloading(True):
        got = outcome(shape.run, alias)
    label = _mode_id(mode)
    REPORT.append((shape.name, label, events))
    assert got == expected
    assert (expected[0] == "raised") == shape.raises, expected
    if not shape.no_query:
        assert events, "the adapter's compiler saw no query"
    expected_reason = shape.fallback.get(vendor)
    for e in events:
        if e.offloaded:
            continue
        if expected_reason and expected_reason in e.reason:
            continue
        if PENDING in e.reason:   # test_worker_functions fails for these
            continue
        pytest.fail(f"fell back to the ORM ({e.reason}): {e.sql}")
    if expected_reason:
        assert any(not e.offloaded for e in events), f"expected a fallback ({expected_reason}) but all ran offloaded"


def test_worker_functions():
    """The worker registers every function the adapter lets through on
    SQLite (molt_django_adapter.WORKER_DJANGO_FUNCTIONS)."""
    from molt_django_adapter import WORKER_DJANGO_FUNCTIONS, get_client
    from molt_django_adapter.execution import FUNCTION_LIST_SQL

    have = {r[0] for r in get_client().query(FUNCTION_LIST_SQL, db_alias="default").rows}
    assert not sorted(WORKER_DJANGO_FUNCTIONS - have)
