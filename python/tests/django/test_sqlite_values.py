"""SQLite: offloaded QuerySets give exactly the ORM's values (type and
value) for every field type Django converts, with USE_TZ on and off, from
Django's own spellings and from odd ones written with raw SQL (offsets,
missing seconds, upper-case UUIDs, booleans other than 0/1, JSON with
spaces, the largest duration...), with the C row decoder and without it; and
with the C decoder the rows arrive final: Django's converters of those
columns are skipped (sqlite_values.py)."""

import datetime
import decimal
import uuid

import pytest
from django.db import connections
from django.test.utils import override_settings

from molt_db_adapter import c_rows
from molt_django_adapter import capture_events, offloading
from molt_django_adapter.compiler import OffloadCompiler
from parity.compare import snap
from parity.models import Spelling

COLUMNS = "flag, at, day, clock, amount, key, doc, span, label, ratio"
ROWS = [
    # Django's own spellings
    (1, "2024-03-31 01:59:59.500000", "2024-02-29", "23:59:59.999999", 1.5,
     "a0eebc999c0b4ef8bb6d6bb9bd380a11", '{"a": [1, 2.5, null], "b": "ü"}', 86_400_000_001, "x", 0.5),
    (0, "2024-01-01 00:00:00", "1970-01-01", "00:00:00", -12345678.1239,
     "00000000000000000000000000000000", '"text"', -1, "", -0.0),
    # odd ones: an offset, a date only, a T, one fraction digit; no seconds; upper case and dashes
    (2, "2024-03-31T01:59:59+02:00", "2024-02-29", "12:00", 1e-7,
     "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", " [1, {\"x\": 1.5e300}] ", 9_223_372_036_854_775_807, "ü", 3),
    ("yes", "2024-10-27", "2000-01-01", "01:02:03.4", 7,
     "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "1", 0, "'); --", 1e300),
    (None, "2024-06-01T12:30:45.123", None, None, "12.5", None, "null", None, None, None),
    (None,) * 10,
]


@pytest.fixture(scope="module")
def spellings():
    conn = connections["default"]
    with conn.schema_editor() as editor:
        editor.execute(f"DROP TABLE IF EXISTS {Spelling._meta.db_table}")
        editor.create_model(Spelling)
    with conn.cursor() as c:
        for row in ROWS:
            c.execute(f"INSERT INTO {Spelling._meta.db_table} ({COLUMNS}) VALUES ({', '.join(['%s'] * 10)})", row)
    yield


SHAPES = {
    "instances": lambda: list(Spelling.objects.order_by("id")),
    "values": lambda: list(Spelling.objects.order_by("id").values()),
    "values_list": lambda: list(Spelling.objects.order_by("id").values_list()),
    "values_list_named": lambda: list(Spelling.objects.order_by("id").values_list("id", "at", "key", named=True)),
    "values_list_flat": lambda: list(Spelling.objects.order_by("id").values_list("at", flat=True)),
    "iterator": lambda: list(Spelling.objects.order_by("id").iterator(chunk_size=2)),
    "iterator_values": lambda: list(Spelling.objects.order_by("id").values("clock", "span").iterator(chunk_size=4)),
    "filtered": lambda: list(Spelling.objects.filter(key=uuid.UUID(int=0)).values_list("key", "amount")),
}


@pytest.mark.parametrize("decoder", ["c", "python"])
@pytest.mark.parametrize("use_tz", [True, False], ids=["tz", "notz"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_sqlite_values_are_the_orms(spellings, shape, use_tz, decoder, monkeypatch):
    if decoder == "python":
        monkeypatch.setattr(c_rows, "decoder", None)
    elif c_rows.decoder is None:
        pytest.skip("molt_db_adapter._rows is not built")
    with override_settings(USE_TZ=use_tz):
        with offloading(False):
            expected = SHAPES[shape]()
        with capture_events() as events, offloading(True):
            got = SHAPES[shape]()
    assert snap(got) == snap(expected)
    assert events and all(e.offloaded for e in events), events


def test_sqlite_converters_are_skipped(spellings, monkeypatch):
    """With the rows final, Django is left no converter to run on the model's
    columns (each column converted once, in the row decoder)."""
    left = []
    orm_get_converters = OffloadCompiler.get_converters

    def recording(self, expressions):
        out = orm_get_converters(self, expressions)
        left.append({self.select[i][0].target.name for i in out})
        return out

    monkeypatch.setattr(OffloadCompiler, "get_converters", recording)
    with offloading(True):
        objs = list(Spelling.objects.order_by("id"))
    assert left == [set()]
    with offloading(False):
        list(Spelling.objects.order_by("id"))
    assert left[1] == {"flag", "at", "day", "clock", "amount", "key", "doc", "span"}
    first = objs[0]
    assert first.at == datetime.datetime(2024, 3, 31, 1, 59, 59, 500000, tzinfo=datetime.timezone.utc)
    assert first.amount == decimal.Decimal("1.500") and first.flag is True and first.doc["b"] == "ü"
    assert first.span == datetime.timedelta(days=1, microseconds=1)
