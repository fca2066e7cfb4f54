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
        if e.offloaded or e.reason.startswith("EmptyResultSet"):   # Django runs nothing either
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


@pytest.mark.parametrize("zone_name", ["Etc/GMT+5", "Etc/GMT-3", "America/New_York", "fixed-0500"])
def test_time_zone_names_as_this_django_reads_them(zone_name):
    """Django 4.2 passes a zone's abbreviation ("-05" for Etc/GMT+5) to its
    SQLite functions, which raise on it (OperationalError); 5.x passes the
    name. The worker follows 5.x, so under 4.2 such a statement runs on the
    ORM and raises as Django does; other zones go to the worker."""
    import datetime
    import zoneinfo

    import django
    from django.db.models.functions import ExtractHour, Trunc

    from parity.models import Book

    tz = (datetime.timezone(datetime.timedelta(hours=-5)) if zone_name == "fixed-0500"
          else zoneinfo.ZoneInfo(zone_name))
    django42_raises = django.VERSION < (5, 0) and zone_name.startswith("Etc/")

    def run(alias):
        qs = Book.objects.using(alias).annotate(d=Trunc("published", "day", tzinfo=tz), h=ExtractHour("published", tzinfo=tz))
        return list(qs.order_by("id").values_list("id", "d", "h"))

    with override_settings(USE_TZ=True):
        with offloading(False):
            expected = outcome(run, "default")
        with capture_events() as events, offloading(True):
            got = outcome(run, "default")
    assert got == expected
    assert (expected[0] == "raised") == django42_raises, expected
    assert [e.offloaded for e in events] == [not django42_raises]
    if django42_raises:
        assert "reject the time zone name" in events[0].reason


@pytest.mark.parametrize("stored", ["CAST(X'E974E9' AS TEXT)", "X'E974E9'"])
def test_sqlite_text_that_is_not_utf8(stored):
    """A TEXT value that is not UTF-8 (a legacy row) makes Django's sqlite3
    raise OperationalError ("Could not decode to UTF-8"); a BLOB stored in
    the same TEXT column is returned as bytes. The worker sends both as
    bytes, so bytes in a TEXT column fall back, and the caller gets what the
    ORM gives in both cases."""
    from django.db.models import BinaryField, TextField, Value
    from django.db.models.functions import Cast

    from parity.models import Tag

    with connections["default"].cursor() as cursor:
        cursor.execute(f"INSERT INTO parity_tag (label) VALUES ({stored})")
        tag_id = cursor.lastrowid
    try:
        def legacy_row(alias):
            return list(Tag.objects.using(alias).filter(id=tag_id).values_list("id", "label"))

        def cast_bytes(alias):
            return list(Tag.objects.using(alias).filter(id=tag_id).annotate(
                x=Cast(Value(b"\xe9t\xe9", output_field=BinaryField()), TextField())).values_list("x"))

        for run in (legacy_row, cast_bytes):
            with offloading(False):
                expected = outcome(run, "default")
            with capture_events() as events, offloading(True):
                got = outcome(run, "default")
            assert got == expected
            assert [e.offloaded for e in events] == [False], events
            assert "bytes in a TEXT column" in events[0].reason
        assert (outcome(legacy_row, "default")[0] == "raised") == stored.startswith("CAST")
    finally:
        with connections["default"].cursor() as cursor:   # (delete() would read the label)
            cursor.execute("DELETE FROM parity_tag WHERE id = %s", [tag_id])


@pytest.mark.parametrize("alias", ALIASES)
def test_explain_is_djangos(alias):
    """explain() gives the ORM's text. On SQLite an EXPLAIN with parameters
    stays on the ORM: the worker binds numbered parameters (?NNN), which
    change the node ids of the plan; without parameters it is offloaded."""
    from parity.models import Book

    with_params = Book.objects.using(alias).filter(pages__gt=100, title__startswith="a").order_by("price")
    for qs, offloaded in ((with_params, alias != "default"), (Book.objects.using(alias).all(), True)):
        with offloading(False):
            expected = qs.explain()
        with capture_events() as events, offloading(True):
            got = qs.explain()
        assert got == expected
        assert [e.offloaded for e in events] == [offloaded], events
