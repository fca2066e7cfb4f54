"""The C row decoder's Django SQLite profile (python/ext/rows/row_sqlite.h)
driven directly, as a hostile caller would: on a real worker's SQLite
payload every plan kind gives exactly what its ``convert`` function gives
(the fast spellings and the rest), malformed plans are refused, a convert
that raises is the caller's error, and mutated payloads raise or match."""

import datetime
import decimal
import json
import os
import random
import sqlite3
import uuid

import msgpack
import pytest

from molt_db_adapter import MoltClient, c_rows
from worker_client import WORKER_BIN

C = c_rows.decoder
pytestmark = pytest.mark.skipif(C is None, reason="molt_db_adapter._rows is not built")

UTC = datetime.timezone.utc
PLUS2 = datetime.timezone(datetime.timedelta(hours=2))
CTX = decimal.Context(prec=9)
CREATE = decimal.Context(prec=15).create_decimal_from_float
QUANTUM = decimal.Decimal(1).scaleb(-3)


def as_datetime(tz):
    def convert(v):
        d = datetime.datetime.fromisoformat(v)
        return d if d.tzinfo or tz is None else d.replace(tzinfo=tz)
    return convert


def as_bool(v):
    return bool(v) if v in (1, 0) else v


def as_json(v):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def as_text(v):
    if isinstance(v, bytes):
        raise ValueError("bytes in a TEXT column")
    return v


#: column -> (declared type, plan); the convert functions are the reference
COLUMNS = {
    "dt": ("datetime", ("datetime", as_datetime(None), None)),
    "dt_utc": ("datetime", ("datetime", as_datetime(UTC), UTC)),
    "dt_plus2": ("datetime", ("datetime", as_datetime(PLUS2), PLUS2)),
    "d": ("date", ("date", datetime.date.fromisoformat, None)),
    "t": ("time", ("time", datetime.time.fromisoformat, None)),
    "b": ("bool", ("bool", as_bool, None)),
    "u": ("char(32)", ("uuid", uuid.UUID, None)),
    "span": ("bigint", ("duration", lambda v: datetime.timedelta(0, 0, v), None)),
    "j": ("text", ("json_field", as_json, None)),
    "n": ("decimal", ("decimal", lambda v: CREATE(v).quantize(QUANTUM, context=CTX), (CREATE, QUANTUM, CTX))),
    "n_expr": ("decimal", ("decimal", CREATE, (CREATE, None, None))),
    "s": ("varchar(9)", ("text", as_text, None)),
    "c": ("integer", ("call", lambda v: ("called", v), None)),
    "raw": ("integer", None),
}
NAMES = list(COLUMNS)
VALUES = [
    # the spellings Django writes
    ["2024-03-31 01:59:59.500000", "2024-03-31 01:59:59", "2024-12-31T23:59:59.123456", "2024-02-29",
     "23:59:59.999999", 1, "a0eebc999c0b4ef8bb6d6bb9bd380a11", 86_400_000_001, '{"a": [1, 2.5, null]}',
     1.5, 7, "ü", 5, 6],
    ["2024-01-01 00:00:00", "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999", "1970-01-01", "00:00:00", 0,
     "00000000000000000000000000000000", -1, '"s"', -12345678.1239, 2.5, "", -1, 0],
    # others: convert decides (or raises)
    ["2024-03-31T01:59:59+02:00", "2024-02-30 00:00:00", "2024-01-01", "2024-13-01", "24:00:00", 2,
     "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", 2**63 - 1, "not json", 1e-7, 3, b"\xff", "x", "y"],
    ["2024-01-01 10:00:00.5", "x" * 19, "2024-01-01 1:00:00", "2024-1-01", "1:02:03", "yes",
     "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", -(2**63), " [1] ", "12.5", 1e300, "'); --", None, 1.5],
    [None] * 14,
]


@pytest.fixture(scope="module")
def payloads(tmp_path_factory):
    if not os.path.exists(WORKER_BIN):
        pytest.skip("the worker is not built")
    path = tmp_path_factory.mktemp("sqlite-profile") / "t.db"
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE t ({', '.join(f'{n} {COLUMNS[n][0]}' for n in NAMES)})")
    db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(NAMES))})", VALUES)
    db.commit()
    db.close()
    with MoltClient([WORKER_BIN, "--stdio", "--db", f"default=sqlite:///{path}"]) as c:
        out = {n: c.query(f"SELECT {n} FROM t ORDER BY rowid", result_format="msgpack") for n in NAMES}
        out["django's own"] = c.query("SELECT dt_utc FROM t ORDER BY rowid LIMIT 2", result_format="msgpack")
        yield out


def reference(result, plan):
    out = []
    for (v,) in result.rows:
        try:
            out.append(("value", repr(v if v is None or plan is None else plan[1](v))))
        except Exception as e:
            out.append(("raised", type(e).__name__))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_each_kind_gives_its_convert(payloads, name):
    plan = COLUMNS[name][1]
    want = reference(payloads[name], plan)
    got = []
    for i in range(len(VALUES)):   # one row at a time: a raising value must not hide the others
        one = payloads[name].rows[i:i + 1]
        raw = msgpack.packb({"columns": [name], "types": payloads[name].types, "rows": [list(r) for r in one]})
        try:
            doc = C.decode_result(raw, django=True, sqlite_plans=lambda types: (plan,))
            got.append(("value", repr(doc["rows"][0][0])))
        except Exception as e:
            got.append(("raised", type(e).__name__ if not isinstance(e, C.Unconvertible) else "ValueError"))
    assert got == want
    assert any(g[0] == "value" and g[1] != "None" for g in got)


def test_whole_payload_and_plans_from_the_types(payloads):
    """The plans callable gets the result's types and its tuple is used."""
    seen = []
    r = payloads["django's own"]

    def plans(types):
        seen.append(list(types))
        return (COLUMNS["dt_utc"][1],)

    doc = C.decode_result(r.raw, django=True, sqlite_plans=plans)
    assert seen == [["datetime"]]
    assert doc["rows"] == [(datetime.datetime(2024, 3, 31, 1, 59, 59, tzinfo=UTC),),
                           (datetime.datetime(1, 1, 1, tzinfo=UTC),)]
    assert doc["rows"][0][0].tzinfo is UTC


@pytest.mark.parametrize("plans", [
    lambda types: [None],                       # not a tuple
    lambda types: (),                           # too few
    lambda types: (None, None),                 # too many
    lambda types: (("datetime", str),),         # two items
    lambda types: (("nope", str, None),),       # unknown kind
    lambda types: ((1, str, None),),            # kind not a str
    lambda types: (("call", None, None),),      # convert not callable
    lambda types: (("datetime", str, "UTC"),),  # tz not a tzinfo
    lambda types: (("decimal", str, (None, None, None)),),
    lambda types: (("decimal", str, None),),
    lambda types: 1 / 0,                        # the callable raises
    None.__class__,                             # returns None
])
def test_malformed_plans_refused(payloads, plans):
    with pytest.raises((TypeError, ValueError, ZeroDivisionError)):
        C.decode_result(payloads["dt"].raw, django=True, sqlite_plans=plans)


def test_sqlite_plans_need_the_django_profile(payloads):
    with pytest.raises(TypeError, match="django=True"):
        C.decode_result(payloads["dt"].raw, sqlite_plans=lambda t: (None,))


def test_convert_errors_are_the_callers(payloads):
    def boom(v):
        raise KeyError(v)
    with pytest.raises(KeyError):
        C.decode_result(payloads["c"].raw, django=True, sqlite_plans=lambda t: (("call", boom, None),))


def test_mutated_payloads_raise_or_match(payloads):
    """Every kind over flipped bytes: an exception, or exactly what the
    plan's convert gives for the rows msgpack reads from those bytes."""
    rng = random.Random(16)
    for name in NAMES:
        plan = COLUMNS[name][1]
        raw = payloads[name].raw
        for _ in range(300):
            b = bytearray(raw)
            for _ in range(rng.randrange(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            try:
                doc = C.decode_result(bytes(b), django=True, sqlite_plans=lambda types: (plan,) * len(types))
            except Exception:
                continue
            if doc is None:
                continue
            ref = msgpack.unpackb(bytes(b), raw=False, timestamp=3, strict_map_key=False)
            if "rows" not in ref:   # the key itself was hit
                assert doc == ref
                continue
            want = [tuple(None if v is None else v if p is None else p[1](v) for v, p in zip(row, (plan,) * len(row)))
                    for row in ref["rows"]]
            assert repr(doc["rows"]) == repr(want)
