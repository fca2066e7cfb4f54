"""The Django profile of the C row decoder reads a uuid's and a JSON
document's text, and a UTC session's timestamptz, straight from the
payload's bytes (row_types.c django_payload_value, json_fast.c
json_fast_parse_utf8) and keeps the str of short JSON keys and values in a
cache (json_fast.c str_cache). Whatever the payload, a hostile one
included, the values (or the refusal) must be what rows.py's converters
give for what msgpack decodes; values() dicts leave the collector only
when no cycle can pass through them. No database needed; about two
seconds.

Skipped when the extension is not built (`make` builds it)."""

import sys
import datetime
import json
import random
import uuid
import zoneinfo

import msgpack
import pytest

from molt_db_adapter import c_rows
from molt_django_adapter.rows import Unconvertible, convert_rows, pg_converters, with_json_fields

C = c_rows.decoder
pytestmark = pytest.mark.skipif(C is None, reason="molt_db_adapter._rows is not built (make)")

UUID = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
UUID_TEXTS = [
    UUID, UUID.replace("-", ""), UUID.upper(), "{" + UUID + "}", "urn:uuid:" + UUID,
    "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
    UUID[:8] + "+" + UUID[9:], UUID[:35] + "g", UUID[:35] + "G", UUID[:35] + "/", UUID[:35] + ":",
    UUID[:35] + "`", UUID[:35] + "\u00e9", UUID[:34] + "\u00e9", "-" + UUID[:35], UUID[:-1], UUID + "0",
    "a0eebc999c0b4ef8bb6d6bb9bd380a1", "a0eebc99-9c0b4-ef8-bb6d-6bb9bd380a11", "", "-" * 36, "0" * 36,
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1\u0661", "A" * 32,
]


REFUSALS = (ValueError, TypeError, OverflowError)   # C's Unconvertible is a ValueError


def refusal(e):
    return next(k for k in REFUSALS if isinstance(e, k))


def pure(types, rows, json_columns=(), django_tz=None):
    """rows.py's values for these rows, or the exception class it raises."""
    try:
        convs = with_json_fields(pg_converters(types, "UTC", django_tz), types, json_columns)
        return convert_rows(rows, convs)
    except Unconvertible:
        return ValueError
    except REFUSALS as e:
        return refusal(e)


def c(raw, json_columns=(), django_tz=None):
    try:
        return C.decode_result(raw, django=True, json_columns=json_columns, zone=datetime.timezone.utc,
                               django_tz=django_tz)["rows"]
    except REFUSALS as e:
        return refusal(e)


def compare(types, rows, json_columns=(), django_tz=None):
    raw = msgpack.packb({"columns": [f"c{j}" for j in range(len(types))], "types": types, "rows": rows},
                        datetime=True)
    got, want = c(raw, json_columns, django_tz), pure(msgpack.unpackb(raw, timestamp=3)["types"],
                                                       msgpack.unpackb(raw, timestamp=3)["rows"],
                                                       json_columns, django_tz)
    assert repr(got) == repr(want), rows


@pytest.mark.parametrize("text", UUID_TEXTS)
def test_uuid_text_is_uuid(text):
    compare(["uuid"], [[text]])
    if len(text) in (32, 36):
        compare(["uuid", "text"], [[text, "x"], [None, "y"], [text, "z"]])


def test_uuid_random_texts_are_uuid():
    """Every lowercase UUID, and one-character mutations of them."""
    rng = random.Random(5)
    for _ in range(500):
        u = str(uuid.UUID(int=rng.getrandbits(128)))
        text = rng.choice([u, u.replace("-", "")])
        at = rng.randrange(len(text))
        bad = text[:at] + rng.choice("-0f9aAg{} \x00\u00e9") + text[at + 1:]
        compare(["uuid"], [[text], [bad]])
        compare(["uuid"], [[bad]])


def test_repeated_and_colliding_object_keys():
    """Documents sharing keys, more distinct keys than the cache holds,
    keys at and past its length limit, non-ASCII keys: json.loads's values."""
    rng = random.Random(9)
    keys = [f"k{i}" for i in range(2000)] + ["x" * 32, "y" * 33, "caf\u00e9", "", "size", "tags"]
    docs = []
    for _ in range(600):
        doc = {rng.choice(keys): rng.choice([1, "v", [], {"size": 2}]) for _ in range(rng.randrange(5))}
        docs.append(json.dumps(doc, ensure_ascii=rng.random() < 0.5))
    rows = [[d, d] for d in docs]
    compare(["jsonb", "json"], rows, json_columns=(0,))
    raw = msgpack.packb({"columns": ["a", "b"], "types": ["jsonb", "json"], "rows": rows})
    for (a, b), d in zip(C.decode_result(raw, django=True, json_columns=(0,))["rows"], docs):
        assert a == b == json.loads(d)
        assert list(a) == list(json.loads(d))   # key order too


@pytest.mark.parametrize("body", [b"\xff", b'{"a\xff": 1}', b'{"a": "\xc3"}', b'["\xed\xa0\x80"]',
                                  b'{"\xc3\xa9": 1}', b"\xe0\x80\x80", b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1\xc3"])
@pytest.mark.parametrize("column", [("uuid", ()), ("json", ()), ("jsonb", (0,)), ("text", (0,))])
def test_payload_text_that_is_not_utf8(body, column):
    """A str whose bytes are not UTF-8 (a hostile worker): refused as
    msgpack refuses it, whichever column type reads it; valid UTF-8 that
    is no JSON or no UUID stays rows.py's answer."""
    typ, json_columns = column
    raw = (b"\x83\xa7columns\x91\xa1c\xa5types\x91" + msgpack.packb(typ)
           + b"\xa4rows\x91\x91\xd9" + bytes([len(body)]) + body)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            msgpack.unpackb(raw)
        with pytest.raises(UnicodeDecodeError):
            C.decode_result(raw, django=True, json_columns=json_columns)
        return
    assert repr(c(raw, json_columns)) == repr(pure([typ], [[text]], json_columns))


UTC = datetime.timezone.utc
TIMESTAMPS = [datetime.datetime(2024, 2, 29, 13, 14, 15, 250000, tzinfo=UTC),
              datetime.datetime(1, 1, 1, tzinfo=UTC), datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
              datetime.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC), datetime.datetime(1970, 1, 1, tzinfo=UTC)]


@pytest.mark.parametrize("django_tz", [None, UTC, zoneinfo.ZoneInfo("America/Chicago"),
                                       datetime.timezone(datetime.timedelta(hours=5, minutes=30)), 5, "UTC"])
def test_timestamptz_in_a_utc_session(django_tz):
    """The instant with Django's tzinfo (naive without one), as rows.py
    gives it; a tzinfo that is none refused by both."""
    compare(["timestamptz"], [[t] for t in TIMESTAMPS] + [[None]], django_tz=django_tz)


def ext(code, body):
    """An extension value's bytes (ext 8), any code and length."""
    return bytes([0xc7, len(body), code & 0xff]) + body


@pytest.mark.parametrize("value", [
    ext(-1, b"\x00" * 5), ext(-1, b""), ext(5, b"\x00" * 4), ext(-1, (2**63 - 1).to_bytes(8, "big")),
    ext(-1, b"\xff" * 12), ext(-1, (0).to_bytes(4, "big") + (-2**62).to_bytes(8, "big", signed=True)),
    ext(-1, (999_999_999 << 34 | 1).to_bytes(8, "big")), ext(-1, (2**32 - 1).to_bytes(4, "big")),
    ext(-1, (1_000_000_000).to_bytes(4, "big") + (1).to_bytes(8, "big")), b"\xd6\xff" + b"\x00" * 4,
    b"\xd7\xff" + (3 << 34 | 86400).to_bytes(8, "big"), b"\xc7\x0c",
])
def test_timestamptz_hostile_extensions(value):
    """Timestamps of bad length, out of datetime's range, nanoseconds past
    a second, another extension type, a short one: what msgpack and rows.py
    make of them, or a refusal by both."""
    raw = (b"\x83" + msgpack.packb("columns") + msgpack.packb(["t"]) + msgpack.packb("types")
           + msgpack.packb(["timestamptz"]) + msgpack.packb("rows") + b"\x91\x91" + value)
    try:
        rows = msgpack.unpackb(raw, timestamp=3)["rows"]
    except REFUSALS:
        with pytest.raises(REFUSALS):
            C.decode_result(raw, django=True, zone=UTC, django_tz=UTC)
        return
    assert repr(c(raw, django_tz=UTC)) == repr(pure(["timestamptz"], rows, django_tz=UTC))


def test_dicts_of_sealed_values_leave_the_collector():
    """values() dicts whose values are atoms or UUIDs are untracked (no
    cycle can pass through them) and tracked again when a container is
    stored in them, so a cycle made later is still collected; a dict or a
    tuple holding a JSON document (a dict that may be filled later, even
    an empty one) stays tracked."""
    import gc
    import weakref

    types = ["int4", "uuid", "text", "jsonb", "json"]
    raw = msgpack.packb({"columns": ["id", "u", "t", "j", "e"], "types": types,
                         "rows": [[1, UUID, "x", "{}", "{}"], [2, None, "y", '{"a": [1]}', "{}"]]})
    kw = dict(django=True, zone=datetime.timezone.utc)
    sealed = C.decode_result(raw, types[:3] + ["text", "text"], dicts=True, **kw)["rows"]
    assert sealed[0]["u"] == uuid.UUID(UUID)
    # from 3.14 CPython never tracks a dict again: such dicts stay tracked
    assert all(gc.is_tracked(d) == (sys.version_info >= (3, 14)) for d in sealed)
    with_json = C.decode_result(raw, dicts=True, json_columns=(3,), **kw)["rows"]
    assert with_json[0]["j"] == {} and with_json[0]["e"] == {}
    assert all(gc.is_tracked(d) for d in with_json)
    tuples = C.decode_result(raw, json_columns=(3,), **kw)["rows"]
    assert all(gc.is_tracked(t) for t in tuples)

    class Node:
        pass

    node = Node()
    row = sealed[0]
    row["node"] = node
    node.row = row
    assert gc.is_tracked(row)
    gone = weakref.ref(node)
    del node, row, sealed
    gc.collect()
    assert gone() is None
