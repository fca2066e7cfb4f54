"""The Django profile of the C row decoder reads a uuid's and a JSON
document's text straight from the payload's bytes (row_types.c
django_text_value, json_fast.c json_fast_parse_utf8) and keeps the str of
short object keys in a cache (json_fast.c key_cache). Whatever the text, a
hostile one included, the values (or the refusal) must be what rows.py's
converters give for the str msgpack decodes. No database needed; about a
second.

Skipped when the extension is not built (`make` builds it)."""

import json
import random
import uuid

import msgpack
import pytest

from molt_db_adapter import c_rows
from molt_django_adapter.rows import convert_rows, pg_converters, with_json_fields

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


def pure(types, rows, json_columns=()):
    """rows.py's values for these rows, or the exception class it raises."""
    try:
        convs = with_json_fields(pg_converters(types, "UTC", None), types, json_columns)
        return convert_rows(rows, convs)
    except ValueError as e:   # Unconvertible, or what UUID()/json raise
        return ValueError


def c(raw, json_columns=()):
    try:
        return C.decode_result(raw, django=True, json_columns=json_columns)["rows"]
    except ValueError:
        return ValueError


def compare(types, rows, json_columns=()):
    raw = msgpack.packb({"columns": [f"c{j}" for j in range(len(types))], "types": types, "rows": rows})
    got, want = c(raw, json_columns), pure(types, rows, json_columns)
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
