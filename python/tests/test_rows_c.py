"""The C row decoder (molt_db_adapter._rows) against the pure-Python path:
the same payloads from a real worker on PostgreSQL and SQLite, decoded
both ways, must give identical rows (compared by repr, so types, NaN, -0.0
and tzinfo count) for every type of the worker's type table, NULLs,
arrays, both numeric modes, json parsing, streams, and the Django
profile in several session zones with USE_TZ on and off. Then hostile
payloads: random, truncated and mutated bytes give a ValueError-family
exception or the same rows as msgpack, never a crash.

Skipped when the extension is not built (`make` builds it)."""

import datetime
import os
import random
import sqlite3
import sys
import zoneinfo
from decimal import Decimal

import msgpack
import pytest

from molt_db_adapter import MoltClient, c_rows
from molt_db_adapter.decoding import Decoding
from molt_db_adapter.results import QueryResult
from molt_django_adapter.rows import Unconvertible, convert_rows, pg_converters
from test_worker_pg import SCALAR_EDGES_SQL, TYPES_SQL
from process_memory import asan_built, rss_kb
from worker_client import WORKER_BIN, pg_client_cmd

C = c_rows.decoder
pytestmark = pytest.mark.skipif(C is None, reason="molt_db_adapter._rows is not built (make)")
NEEDS_PG = pytest.mark.skipif(not os.environ.get("MOLT_TEST_DSN") or not os.path.exists(WORKER_BIN),
                              reason="needs MOLT_TEST_DSN (scripts/with_pg.sh) and the worker")

ARRAYS_SQL = """select '{1.50,NaN,NULL}'::numeric[] as an, '{{1,2},{3,NULL}}'::numeric[] as an2,
 '{2024-02-29,NULL,infinity}'::date[] as ad, '{13:14:15.5,00:00:00}'::time[] as atm,
 '{"2024-02-29 13:14:15.25"}'::timestamp[] as ats,
 array['2024-02-29 13:14:15.25+02'::timestamptz, null, '1900-01-01 00:00:00+00'] as atstz,
 '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'::uuid[] as au, array['{"a":1}'::json, '2'] as aj,
 array['{"a":1}'::jsonb, null] as ajb, '{"\\\\x00ff",NULL}'::bytea[] as aby,
 '{1 day,-1 mon 00:00:01}'::interval[] as aiv, '[0:1]={1.5,2}'::numeric[] as anlb,
 '{t,f,NULL}'::bool[] as ab, '{1.5,NaN}'::float8[] as af, '{x,NULL,""}'::text[] as at,
 '{1.2.3.4}'::inet[] as ai, '{}'::int4[] as ae"""

# rows with every value NULL and many rows of the common types
MANY_SQL = """select g as id, 't' || g as t, g * 1.25 as f, (g % 3 = 0) as b,
 case when g % 5 = 0 then null else (g * 1.5)::numeric end as n,
 timestamptz '2024-01-01 00:00:00+00' + g * interval '61 seconds 7 microseconds' as ts,
 (date '2000-01-01' + g) as d, md5(g::text)::uuid as u, ('{"g": ' || g || '}')::jsonb as j
 from generate_series(1, 3000) g"""

NULLS_SQL = ("select null::int4 as i, null::numeric as n, null::timestamptz as ts, null::date as d, "
             "null::uuid as u, null::json as j, null::int4[] as a, null::interval as iv")


def same(a, b):
    assert repr(a) == repr(b)


def both_ways(codec, raw, decoding):
    """(C rows, Python rows) of one payload; the C path must have taken it."""
    fast = QueryResult(codec, raw, {}, 1, decoding)
    assert fast._c_doc() is not None, "the C decoder declined a worker payload"
    saved, c_rows.decoder = c_rows.decoder, None
    try:
        slow = QueryResult(codec, raw, {}, 1, decoding)
        slow_rows, slow_dicts = slow.rows, slow.dicts()
    finally:
        c_rows.decoder = saved
    same(fast.columns, slow.columns)
    same(fast.types, slow.types)
    same(fast.dicts(), slow_dicts)
    return fast.rows, slow_rows


@pytest.fixture(scope="module")
def pg_client():
    if not os.environ.get("MOLT_TEST_DSN") or not os.path.exists(WORKER_BIN):
        pytest.skip("needs MOLT_TEST_DSN (scripts/with_pg.sh) and the worker")
    with MoltClient(pg_client_cmd()) as c:
        yield c


ALL_PG = [TYPES_SQL, SCALAR_EDGES_SQL, ARRAYS_SQL, MANY_SQL, NULLS_SQL]
DECODINGS = [Decoding("str", False), Decoding("decimal", False), Decoding("str", True), Decoding("decimal", True)]


@NEEDS_PG
@pytest.mark.parametrize("sql", ALL_PG, ids=["types", "edges", "arrays", "many", "nulls"])
@pytest.mark.parametrize("decoding", DECODINGS, ids=lambda d: f"{d.numeric}-json{int(d.json)}")
def test_pg_client_rows_identical(pg_client, sql, decoding):
    r = pg_client.query(sql, result_format="msgpack")
    fast, slow = both_ways("msgpack", r.raw, decoding)
    same(fast, slow)
    assert len(fast) >= 1


@NEEDS_PG
@pytest.mark.parametrize("decoding", DECODINGS[:2] + DECODINGS[3:], ids=["str", "decimal", "decimal-json"])
def test_pg_stream_parts_identical(pg_client, decoding):
    def streamed():
        with pg_client.stream(MANY_SQL, batch_rows=700, decode_numeric=decoding.numeric,
                              decode_json=decoding.json) as s:
            return list(s)
    fast = streamed()
    saved, c_rows.decoder = c_rows.decoder, None
    try:
        slow = streamed()
    finally:
        c_rows.decoder = saved
    assert len(fast) == 3000
    same(fast, slow)


def one_column(doc, i):
    """A payload of column i alone (re-packed: timestamps stay extensions)."""
    return msgpack.packb({"columns": [doc["columns"][i]], "types": [doc["types"][i]],
                          "rows": [[r[i]] for r in doc["rows"]], "row_count": len(doc["rows"]),
                          "truncated": False}, datetime=True)


ZONES = [("UTC", datetime.timezone.utc), ("UTC", None), ("America/Chicago", datetime.timezone.utc),
         ("America/Chicago", None), ("Asia/Kolkata", zoneinfo.ZoneInfo("Asia/Kolkata"))]


@NEEDS_PG
@pytest.mark.parametrize("sql", ALL_PG, ids=["types", "edges", "arrays", "many", "nulls"])
@pytest.mark.parametrize("session_tz,django_tz", ZONES, ids=lambda z: str(z))
def test_pg_django_profile_identical(pg_client, sql, session_tz, django_tz):
    """Column by column, the C Django profile gives rows.py's values, or
    both refuse (Unconvertible, ValueError, ...)."""
    raw = pg_client.query(sql, result_format="msgpack").raw
    doc = msgpack.unpackb(raw, timestamp=3)
    zone = zoneinfo.ZoneInfo(session_tz) if session_tz != "UTC" else datetime.timezone.utc
    converted = refused = 0
    for i, t in enumerate(doc["types"]):
        col = one_column(doc, i)
        try:
            want = convert_rows([r for r in msgpack.unpackb(col, timestamp=3)["rows"]],
                                pg_converters([t], session_tz, django_tz))
        except (Unconvertible, ValueError, TypeError, KeyError, OverflowError):
            with pytest.raises((ValueError, TypeError, KeyError, OverflowError)):
                C.decode_result(col, django=True, zone=zone, django_tz=django_tz)
            refused += 1
            continue
        got = C.decode_result(col, django=True, zone=zone, django_tz=django_tz)["rows"]
        same(got, want)
        converted += 1
    assert converted > 0
    if sql is TYPES_SQL:
        assert refused > 0   # ranges, infinity dates: the ORM's


@pytest.fixture(scope="module")
def sqlite_client(tmp_path_factory):
    if not os.path.exists(WORKER_BIN):
        pytest.skip("the worker is not built")
    path = tmp_path_factory.mktemp("rows") / "t.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (i integer, r real, s text, b blob, d date, dt datetime, n decimal, "
               "v varchar(5), x)")
    db.executemany("INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?)", [
        (1, 1.5, "héllo", b"\x00\xff", "2024-02-29", "2024-02-29 13:14:15.25", "1.50", "ab", 7),
        (None, None, None, None, None, None, None, None, None),
        (-2**63, float("-inf"), "", b"", "x", "y", 3, "", 1.25),
        (2**63 - 1, -0.0, "\U0001f600", b"q" * 300, "0001-01-01", "", "NaN", None, "t"),
    ])
    db.execute("INSERT INTO t (s) VALUES (CAST(X'C328' AS TEXT))")   # TEXT that is not UTF-8
    db.commit()
    db.close()
    with MoltClient([WORKER_BIN, "--stdio", "--db", f"default=sqlite:///{path}"]) as c:
        yield c


@pytest.mark.parametrize("decoding", DECODINGS, ids=lambda d: f"{d.numeric}-json{int(d.json)}")
@pytest.mark.parametrize("sql", ["select * from t", "select i + 1, r * 2, s || 'x', length(b), null from t"])
def test_sqlite_rows_identical(sqlite_client, sql, decoding):
    r = sqlite_client.query(sql, result_format="msgpack")
    fast, slow = both_ways("msgpack", r.raw, decoding)
    same(fast, slow)
    assert len(fast) == 5


def test_the_docs_repeated_strs_are_msgpacks():
    """The doc's strs kept from one result to the next (keys, types,
    column names up to 24 bytes) give msgpack's values whatever comes:
    the same names again, names that share a cache slot, non-ASCII,
    empty, 24 and 25 bytes, a str subclass given as types, a key repeated."""
    names = ["a", "b", "", "x" * 24, "y" * 25, "\u00e9", "\u00e9" * 12, "?column?", "int8", "ab", "ba"]
    names += [f"c{i}" for i in range(200)]  # more than the slots: every slot replaced
    rng = random.Random(5)
    for _ in range(300):
        cols = rng.sample(names, rng.randint(1, 4))
        doc = {"columns": cols, "types": ["text"] * len(cols), "rows": [[c for c in cols]], "row_count": 1,
               rng.choice(names): rng.choice(names), "truncated": False}
        raw = msgpack.packb(doc)
        want = msgpack.unpackb(raw, raw=False)
        want["rows"] = [tuple(r) for r in want["rows"]]
        assert C.decode_result(raw) == want, doc
        assert C.decode_result(raw, None, dicts=True)["rows"] == [dict(zip(cols, cols))]
    repeated = b"\x82" + msgpack.packb("types") + msgpack.packb(["int8"]) + msgpack.packb("types") + \
        msgpack.packb(["text"])
    assert C.decode_result(repeated) == {"types": ["text"]}

    class Odd(str):
        def __eq__(self, other):
            raise ArithmeticError("odd")

        __hash__ = str.__hash__

    raw = msgpack.packb({"columns": ["a"], "types": ["int8"], "rows": [[1]]})
    assert C.decode_result(raw, [Odd("int8")])["rows"] == [(1,)]


def test_the_rows_take_the_maps_last_types_and_columns_wherever_they_come():
    """Types and columns before the rows, after them, or again after them:
    the rows are converted with the map's own (its last), as msgpack plus
    the Python conversion would."""
    def packed(*pairs):
        return bytes([0x80 | len(pairs)]) + b"".join(msgpack.packb(k) + msgpack.packb(v) for k, v in pairs)

    rows = ("rows", [["1.5"]])
    num, text = ("types", ["numeric"]), ("types", ["text"])
    for pairs, want in [((num, rows), Decimal("1.5")), ((rows, num), Decimal("1.5")),
                        ((text, rows, num), Decimal("1.5")), ((num, rows, text), "1.5"),
                        ((num, rows, num), Decimal("1.5")), ((rows,), None)]:
        doc = C.decode_result(packed(*pairs), numeric_decimal=True)
        assert (doc is None) if want is None else doc["rows"] == [(want,)], pairs
    a, b = ("columns", ["a"]), ("columns", ["b"])
    for pairs, key in [((a, num, rows), "a"), ((num, rows, a), "a"), ((a, num, rows, b), "b")]:
        assert C.decode_result(packed(*pairs), dicts=True)["rows"] == [{key: "1.5"}], pairs


def test_declined_shapes_go_to_python():
    """Map rows, rows of another width, a payload that is not a map: None
    (the Python path decodes them as before)."""
    base = {"columns": ["a", "b"], "types": ["int4", "text"]}
    assert C.decode_result(msgpack.packb({**base, "rows": [{"a": 1, "b": "x"}]})) is None
    assert C.decode_result(msgpack.packb({**base, "rows": [[1]]})) is None
    assert C.decode_result(msgpack.packb({**base, "rows": [[1, "x", 2]]})) is None
    assert C.decode_result(msgpack.packb({"columns": ["a"], "rows": [[1]]})) is None
    assert C.decode_result(msgpack.packb([1, 2])) is None
    r = QueryResult("msgpack", msgpack.packb({**base, "rows": [{"b": "x", "a": 1}]}), {}, 1)
    assert r.rows == [(1, "x")]


def test_arguments_by_position_and_by_name():
    """The hand-written argument scan takes what the signature says: the
    payload and types by position or name, any buffer, flags by truth."""
    raw = msgpack.packb({"columns": ["a"], "types": ["numeric"], "rows": [["1.5"]]})
    want = C.decode_result(raw, None, numeric_decimal=True)
    assert repr(want["rows"]) == "[(Decimal('1.5'),)]"
    for got in (C.decode_result(payload=raw, types=None, numeric_decimal=1),
                C.decode_result(bytearray(raw), numeric_decimal="yes"),
                C.decode_result(memoryview(raw), types=["numeric"], numeric_decimal=True),
                C.decode_result(raw, numeric_decimal=True, **{"columns": None, "dicts": 0})):
        assert repr(got) == repr(want)
    assert C.decode_result(raw, dicts=True)["rows"] == [{"a": "1.5"}]
    assert C.decode_result(raw, ["text"])["rows"] == [("1.5",)]


@pytest.mark.parametrize("call, message", [
    (lambda: C.decode_result(), "missing required argument 'payload'"),
    (lambda: C.decode_result(b"\x80", None, 1), "at most 2 positional arguments"),
    (lambda: C.decode_result(b"\x80", numeric=True), "'numeric' is an invalid keyword argument"),
    (lambda: C.decode_result(b"\x80", payload=b"\x80"), "given by name \\('payload'\\) and position \\(1\\)"),
    (lambda: C.decode_result(b"\x80", None, types=None), "given by name \\('types'\\) and position \\(2\\)"),
    (lambda: C.decode_result("\x80"), "'payload' must be bytes-like object, not str"),
    (lambda: C.decode_result(b"\x80", django=True, json_columns=[0]), "'json_columns' must be tuple, not list"),
    (lambda: C.decode_result(b"\x80", json_columns=(0,)), "json_columns and sqlite_plans are for Django"),
])
def test_bad_arguments_refused(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_a_flag_whose_truth_raises_propagates():
    class Bad:
        def __bool__(self):
            raise ZeroDivisionError("no truth")
    with pytest.raises(ZeroDivisionError):
        C.decode_result(b"\x80", parse_json=Bad())


def test_unknown_type_is_unconvertible_for_django_only():
    raw = msgpack.packb({"columns": ["a"], "types": ["int4range"], "rows": [[{"empty": True}]]})
    assert C.decode_result(raw)["rows"] == [({"empty": True},)]
    with pytest.raises(C.Unconvertible, match="int4range"):
        C.decode_result(raw, django=True)


# ---- hostile payloads ----

def sample_payload():
    ts = msgpack.Timestamp(1700000000, 123456000)
    rows = [[i, f"t{i}", i * 0.5, None, ts, [str(i), None, ["1.5"]], {"months": -14, "days": 3, "micros": -5},
             b"\x00" * (i % 4), "2024-02-29", "13:14:15.5", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
             '{"k": [1, null]}'] for i in range(12)]
    return msgpack.packb({"columns": [f"c{j}" for j in range(12)],
                          "types": ["int8", "text", "float8", "int4", "timestamptz", "_numeric", "interval",
                                    "bytea", "date", "time", "uuid", "json"],
                          "rows": rows, "row_count": 12, "truncated": False}, datetime=True)


PROFILES = [dict(), dict(numeric_decimal=True, parse_json=True),
            dict(django=True, zone=zoneinfo.ZoneInfo("America/Chicago"), django_tz=datetime.timezone.utc),
            dict(dicts=True)]
# ValueError covers Unconvertible and UnicodeDecodeError; ArithmeticError Decimal's
# InvalidOperation and OverflowError (as the pure path raises them)
REFUSALS = (ValueError, TypeError, KeyError, ArithmeticError)


def check_hostile(raw):
    """Every profile: a doc (whose rows, for the client profile, are what
    the pure path gives when msgpack accepts the bytes too) or a refusal."""
    for opts in PROFILES:
        try:
            doc = C.decode_result(raw, **opts)
        except REFUSALS:
            continue
        if doc is None or (opts and not opts.get("dicts")):
            continue
        try:
            want = msgpack.unpackb(raw, timestamp=3, strict_map_key=False)
        except Exception:
            continue   # msgpack refuses what C took: a stricter reader would be a bug, a laxer one is not
        if isinstance(want.get("rows"), list):
            if opts:   # dicts: keyed by the map's own columns
                same(doc["rows"], [dict(zip(want["columns"], r)) for r in want["rows"]])
            else:
                same(doc["rows"], [tuple(r) for r in want["rows"]])


def test_truncated_payloads_refused():
    raw = sample_payload()
    for n in range(len(raw)):
        with pytest.raises(ValueError):
            C.decode_result(raw[:n])


def test_mutated_and_random_payloads():
    rng = random.Random(16)
    raw = sample_payload()
    for _ in range(6000):
        b = bytearray(raw)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        check_hostile(bytes(b))
    for _ in range(3000):
        check_hostile(bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))))


def test_lengths_past_the_payload_refused_without_allocating():
    """Headers that claim 4 G elements or bytes in a few bytes of payload."""
    for raw in [b"\x81\xa4rows\xdd\xff\xff\xff\xff", b"\x81\xa4rows\xdf\xff\xff\xff\xff",
                b"\x81\xa1x\xc6\xff\xff\xff\xff", b"\x81\xa1x\xdb\xff\xff\xff\xff", b"\x81\xa1x\xc9\xff\xff\xff\xff\x01",
                b"\x82\xa5types\x91\xa4int4\xa4rows\x91\xdd\xff\xff\xff\xff"]:
        with pytest.raises(ValueError):
            C.decode_result(raw)


def test_nesting_is_bounded():
    deep = b"\x81\xa1x" + b"\x91" * 100000 + b"\xc0"
    with pytest.raises(ValueError, match="deeply"):
        C.decode_result(deep)
    rows = b"\x82\xa5types\x91\xa4int4\xa4rows\x91\x91" + b"\x91" * 100000 + b"\xc0"
    with pytest.raises(ValueError, match="deeply"):
        C.decode_result(rows)


@NEEDS_PG
def test_pg_django_json_field_columns_identical(pg_client):
    """A JSONField's column parsed as its from_db_value would (text that is
    not JSON kept), in C and in rows.py; over a column whose own conversion
    is not a pass-through, both refuse."""
    from molt_django_adapter.rows import with_json_fields

    sql = ("select '{\"a\": [1, 2.5, null]}'::jsonb as jb, 'not json'::text as t, '\"s\"'::text as s, "
           "'[1]'::json as js, null::jsonb as n, 7 as i")
    raw = pg_client.query(sql, result_format="msgpack").raw
    doc = msgpack.unpackb(raw, timestamp=3)
    convs = pg_converters(doc["types"], "UTC", None)
    want = convert_rows(doc["rows"], with_json_fields(convs, doc["types"], (0, 1, 2, 4)))
    got = C.decode_result(raw, django=True, json_columns=(0, 1, 2, 4))["rows"]
    same(got, want)
    assert got[0][:3] == ({"a": [1, 2.5, None]}, "not json", "s")
    with pytest.raises(Unconvertible):   # json: parsed by its own conversion
        with_json_fields(convs, doc["types"], (3,))
    with pytest.raises(C.Unconvertible, match="JSONField over a column of type json"):
        C.decode_result(raw, django=True, json_columns=(3,))
    with pytest.raises(Unconvertible):   # int4 passes through, but 7 is no JSON text
        convert_rows(doc["rows"], with_json_fields(convs, doc["types"], (5,)))
    with pytest.raises(C.Unconvertible, match="JSONField value 7"):
        C.decode_result(raw, django=True, json_columns=(5,))


JSON_TEXTS = ['{"a": [1, 2.5, null]}', " [1] ", '"x"', "1 2", "nan", "NaN", "", "\ufeff1", ' \ufeff1',
              '{"a":1}  \n', "tru", "[1,]", "1e999", '"\\ud800"', "\t\r\n", '{"a":1,"a":2}',
              # the fast path's edges (json_fast.c): numbers, words, nesting, what it declines
              "-0", "-0.0", "0.5e-3", "1E+2", "1.", "1e", "01", "-", "-Infinity", "[Infinity]",
              "999999999999999999", "-999999999999999999", "1000000000000000000", "1" * 300,
              "1e-999", "2.5" + "0" * 70, '{"a" : 1 , "b":[ ] ,"c":{}}', '{"a":1,}', '{,}', '{"a"}',
              '{"a":}', '[1 2]', "[true,false,null]", "truex", "[tru]", '"a\\nb"', '"tab\there"',
              '"caf\u00e9"', '"\x7f"', '"unterminated', "[" * 40 + "]" * 40, "[" * 20 + "1" + "]" * 20,
              '{"k": "v"}garbage', '{"size": 3, "tags": ["a", "b"], "color": "red"}']


@pytest.mark.parametrize("text", JSON_TEXTS)
def test_json_parse_is_json_loads(text):
    """The C scanner path gives json.loads's value, or its exact error; a
    JSONField keeps text that is not JSON."""
    import json

    try:
        want = ("ok", repr(json.loads(text)))
    except json.JSONDecodeError as e:
        want = ("err", str(e))
    raw = msgpack.packb({"columns": ["j"], "types": ["jsonb"], "rows": [[text]]})
    try:
        got = ("ok", repr(C.decode_result(raw, parse_json=True)["rows"][0][0]))
    except json.JSONDecodeError as e:
        got = ("err", str(e))
    assert got == want
    field = C.decode_result(raw, django=True, json_columns=(0,))["rows"][0][0]
    assert repr(field) == (want[1] if want[0] == "ok" else repr(text))


def test_json_parse_random_documents_are_json_loads():
    """Random documents (the shapes jsonb prints, and mutations of them)
    parse as json.loads parses them, through the fast path or the scanner."""
    import json

    rnd = random.Random(7)

    def doc(depth=0):
        k = rnd.randrange(7 if depth < 4 else 4)
        if k == 0:
            return rnd.choice([0, -1, 7, 2**62, -2**63, 10**18 - 1, 10**19])
        if k == 1:
            return rnd.choice([0.0, -0.0, 1.5, 1e300, 2.2250738585072014e-308, 0.1 + 0.2, -3.75e-7])
        if k == 2:
            return rnd.choice(["", "a", "tags", "caf\u00e9", "q\"uote", "back\\slash", "\x01", "\U0001f600"])
        if k == 3:
            return rnd.choice([True, False, None])
        if k == 4:
            return [doc(depth + 1) for _ in range(rnd.randrange(4))]
        return {rnd.choice("abcd"): doc(depth + 1) for _ in range(rnd.randrange(4))}

    texts = []
    for _ in range(400):
        text = json.dumps(doc(), ensure_ascii=rnd.random() < 0.5, separators=rnd.choice([(",", ":"), (", ", ": ")]))
        texts.append(text)
        cut = rnd.randrange(len(text) + 1)
        texts.append(text[:cut] + rnd.choice(["", " ", ",", "]", "}", "x", "1"]) + text[cut + 1:])
    raw = msgpack.packb({"columns": ["j"], "types": ["jsonb"], "rows": [[t] for t in texts]})
    got = C.decode_result(raw, django=True, json_columns=(0,))["rows"]
    for text, (value,) in zip(texts, got):
        try:
            want = json.loads(text)
        except json.JSONDecodeError:
            want = text
        assert repr(value) == repr(want), text


def test_no_reference_leaks():
    """20 000 decodes in every profile, and as many refusals, leave the
    process's memory where it was (a leaked reference per value would add
    tens of MB)."""
    if asan_built(C):
        pytest.skip("the extension is ASan-built: its quarantine grows RSS")
    good = sample_payload()
    bad = good[:len(good) // 2]
    unconvertible = msgpack.packb({"columns": ["a"], "types": ["int4range"], "rows": [[1]]})

    def round_():
        for opts in PROFILES:
            C.decode_result(good, **opts)
        C.decode_result(good, django=True, json_columns=(1,))   # text that is not JSON: kept
        for raw, opts in ((bad, {}), (unconvertible, {"django": True})):
            with pytest.raises(ValueError):
                C.decode_result(raw, **opts)

    for _ in range(2000):   # warm caches and allocator pools
        round_()
    before = rss_kb()
    for _ in range(20000):
        round_()
    assert rss_kb() - before < 4096


def test_dict_keys_survive_a_conversion_that_changes_the_columns_list():
    """A conversion may run Python code (here the session zone's
    utcoffset): emptying the caller's columns list meanwhile leaves the
    dicts keyed by the names as they were, and nothing is read past it."""
    columns = ["ts", "n"]

    class Shrinking(datetime.tzinfo):
        def utcoffset(self, dt):
            columns.clear()
            return datetime.timedelta(hours=1)

        def dst(self, dt):
            return datetime.timedelta(0)

    ts = msgpack.Timestamp(1700000000, 0)
    raw = msgpack.packb({"rows": [[ts, i] for i in range(50)]}, datetime=True)
    doc = C.decode_result(raw, ["timestamptz", "int4"], columns=columns, dicts=True, django=True,
                          zone=Shrinking())
    assert columns == []
    assert [sorted(d) for d in doc["rows"]] == [["n", "ts"]] * 50
    assert [d["n"] for d in doc["rows"]] == list(range(50))


# ---- InstanceBuilder (python/ext/rows/model_rows.c), driven as a hostile caller would

class _State:
    pass


class _Model:
    pass


class _Setter:
    """A data descriptor: a foreign-key flag must store past it (as
    ForeignKeyDeferredAttribute's __set__ would), a plain name goes
    through it (as setattr does)."""

    def __init__(self):
        self.calls = 0

    def __get__(self, obj, cls=None):
        return self if obj is None else obj.__dict__.get("through")

    def __set__(self, obj, value):
        self.calls += 1
        obj.__dict__["through"] = ("set", value)


def _builder(names=("a", "b"), fks=(False, True), model=_Model, state=_State, db="db1", deferred=None):
    return C.InstanceBuilder(model, names, fks, state, db, deferred)


def test_instance_builder_builds_what_init_would():
    DEFERRED = object()
    build = _builder(names=("a", "fk", "c"), fks=(False, True, False), deferred=DEFERRED)
    o = build((1, 7, "x"))
    assert type(o) is _Model and list(vars(o)) == ["_state", "a", "fk", "c"]
    assert (o.a, o.fk, o.c) == (1, 7, "x")
    assert list(vars(o._state).items()) == [("fields_cache", {}), ("adding", False), ("db", "db1")]
    o = build([2, None, DEFERRED])          # a list too; a null key makes no cache, deferred is skipped
    assert list(vars(o)) == ["_state", "a", "fk"] and o.fk is None
    assert list(vars(o._state).items()) == [("adding", False), ("db", "db1")]


def test_instance_builder_foreign_key_skips_a_data_descriptor():
    class M:
        fk = _Setter()
        plain = _Setter()

    build = _builder(names=("fk", "plain"), fks=(True, False), model=M)
    o = build((5, 6))
    assert o.__dict__["fk"] == 5 and o.__dict__["through"] == ("set", 6)
    assert M.__dict__["fk"].calls == 0 and M.__dict__["plain"].calls == 1


@pytest.mark.parametrize("args", [
    (1, ("a",), (False,), _State, "d", None),            # not a type
    (_Model, ["a"], (False,), _State, "d", None),         # names not a tuple
    (_Model, ("a",), (False, True), _State, "d", None),   # one flag per name
    (_Model, (1,), (False,), _State, "d", None),          # names not str
])
def test_instance_builder_refuses_malformed_arguments(args):
    with pytest.raises((TypeError, ValueError)):
        C.InstanceBuilder(*args)


def test_instance_builder_refuses_bad_rows_and_failing_parts():
    build = _builder()
    for bad in [(1,), (1, 2, 3), 5, None, iter([1])]:
        with pytest.raises((TypeError, ValueError)):
            build(bad)
    with pytest.raises(TypeError):
        build((1, 2), (3, 4))
    with pytest.raises(TypeError):
        build(values=(1, 2))

    class Odd:
        def __ne__(self, other):
            raise ArithmeticError("compare")

        __hash__ = object.__hash__

    with pytest.raises(ArithmeticError):
        build((1, Odd()))

    def no_state():
        raise LookupError("state")

    with pytest.raises(LookupError):
        _builder(state=no_state)((1, 2))

    class Frozen:
        __slots__ = ()

    with pytest.raises((AttributeError, TypeError)):
        _builder(model=Frozen)((1, 2))


def test_instance_builder_no_reference_leaks():
    build = _builder()
    row = (object(), 3)
    before = [sys.getrefcount(x) for x in (row[0], _Model, _State, build)]
    objs = [build(row) for _ in range(1000)]
    del objs
    for _ in range(200):
        try:
            build((1,))
        except ValueError:
            pass
    assert [sys.getrefcount(x) for x in (row[0], _Model, _State, build)] == before
