"""molt_worker on a real PostgreSQL (MOLT_TEST_DSN, from scripts/with_pg.sh):
value encodings, parameters, the read-only guarantee, db_exec, deadlines and
cancellation that stop the server's query (checked in pg_stat_activity)."""
import datetime
import json
import math
import os
import time

import msgpack
import pytest

from worker_client import Worker, decode, WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)"),
]


@pytest.fixture(scope="module")
def pg():
    psycopg = pytest.importorskip("psycopg")
    con = psycopg.connect(DSN, autocommit=True)
    con.execute("drop table if exists w6_items; drop sequence if exists w6_seq")
    con.execute("create table w6_items(id serial primary key, name text unique not null, "
                "qty int not null default 0 check (qty >= 0))")
    con.execute("insert into w6_items(name, qty) values ('a', 1), ('b', 2)")
    con.execute("create sequence w6_seq")
    yield con
    con.execute("drop table if exists w6_items; drop sequence if exists w6_seq")
    con.close()


@pytest.fixture
def w(pg):
    with Worker({"default": DSN}, "--allow-write", "default") as wk:
        yield wk


def active(pg, needle):
    rows = pg.execute("select count(*) from pg_stat_activity where state = 'active' "
                      "and query like %s and pid <> pg_backend_pid()", (f"%{needle}%",)).fetchone()
    return rows[0]


def wait_gone(pg, needle, within=1.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if active(pg, needle) == 0:
            return True
        time.sleep(0.02)
    return False


TYPES_SQL = """select true as b, 32767::int2 as i2, 7::int4 as i4, 9007199254740993::int8 as i8,
 26::oid as o, 1.1::float4 as f4, 0.1::float8 as f8, 'NaN'::float8 as fnan,
 '-Infinity'::float8 as fninf, 12.30::numeric as n, 'NaN'::numeric as nnan,
 'tx'::text as t, 'vc'::varchar as vc, 'bp'::char(3) as bp, 'nm'::name as nm,
 '\\x00ff'::bytea as by, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid as u,
 '2024-02-29'::date as d, 'infinity'::date as dinf, '13:14:15.5'::time as tm,
 '13:14:15+05:30'::timetz as tz, '2024-02-29 13:14:15.25'::timestamp as ts,
 '2024-02-29 13:14:15.25+02'::timestamptz as tstz, '-infinity'::timestamptz as tsninf,
 '1 year 2 mons 3 days 00:00:04.5'::interval as iv, '{"k": [1, null]}'::json as js,
 '{"k": [1, null]}'::jsonb as jb, '{{1,2},{3,NULL}}'::int4[] as arr,
 '[0:1]={5,6}'::int4[] as arrlb, '{}'::text[] as arre, '[1,5)'::int4range as rg,
 'empty'::int4range as rge, '(,3]'::numrange as rgi, '{[1,2), [5,6)}'::int4multirange as mr,
 '1.2.3.4'::inet as other, null::int4 as nul"""


def test_value_encodings_msgpack(w):
    d = decode(w.conn.query(TYPES_SQL, result_format="msgpack"))
    row = dict(zip(d["columns"], d["rows"][0]))
    types = dict(zip(d["columns"], d["types"]))
    assert types["i8"] == "int8" and types["arr"] == "_int4" and types["tstz"] == "timestamptz"
    assert row["b"] is True and row["i2"] == 32767 and row["i8"] == 9007199254740993
    assert row["o"] == 26 and row["f4"] == 1.1 and row["f8"] == 0.1
    assert math.isnan(row["fnan"]) and row["fninf"] == -math.inf
    assert row["n"] == "12.30" and row["nnan"] == "NaN"
    assert (row["t"], row["vc"], row["bp"], row["nm"]) == ("tx", "vc", "bp ", "nm")
    assert row["by"] == b"\x00\xff"
    assert row["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert row["d"] == "2024-02-29" and row["dinf"] == "infinity"
    assert row["tm"] == "13:14:15.5" and row["tz"] == "13:14:15+05:30"
    assert row["ts"] == "2024-02-29T13:14:15.25"
    assert isinstance(row["tstz"], msgpack.Timestamp) or isinstance(row["tstz"], datetime.datetime)
    ts = row["tstz"]
    if isinstance(ts, msgpack.Timestamp):
        ts = ts.to_datetime()
    assert ts == datetime.datetime(2024, 2, 29, 11, 14, 15, 250000, tzinfo=datetime.timezone.utc)
    assert row["tsninf"] == "-infinity"
    assert row["iv"] == {"months": 14, "days": 3, "micros": 4500000}
    assert json.loads(row["js"]) == {"k": [1, None]} and json.loads(row["jb"]) == {"k": [1, None]}
    assert row["arr"] == [[1, 2], [3, None]]
    assert row["arrlb"] == {"lower_bounds": [0], "values": [5, 6]}
    assert row["arre"] == []
    assert row["rg"] == {"empty": False, "lower": {"value": 1, "inclusive": True},
                         "upper": {"value": 5, "inclusive": False}}
    assert row["rge"] == {"empty": True, "lower": None, "upper": None}
    assert row["rgi"] == {"empty": False, "lower": None,
                          "upper": {"value": "3", "inclusive": True}}
    assert [r["lower"]["value"] for r in row["mr"]] == [1, 5]
    assert row["other"] == "1.2.3.4" and row["nul"] is None


def test_value_encodings_json(w):
    r = w.conn.query(TYPES_SQL, result_format="json")
    d = json.loads(r["payload"])
    row = dict(zip(d["columns"], d["rows"][0]))
    assert row["f4"] == 1.1 and row["fnan"] == "NaN" and row["fninf"] == "-Infinity"
    assert row["by"] == "AP8="
    assert row["tstz"] == "2024-02-29T11:14:15.25+00:00"
    assert row["js"] == {"k": [1, None]} and row["jb"] == {"k": [1, None]}
    assert row["iv"] == {"months": 14, "days": 3, "micros": 4500000}
    assert row["i8"] == 9007199254740993


DATETIME_EDGES_SQL = """select '0001-01-01 00:00:00+00'::timestamptz as z1,
 '9999-12-31 23:59:59.999999+00'::timestamptz as z2, '10000-01-01 00:00:00+00'::timestamptz as z3,
 '0001-12-31 23:59:59.999999+00 BC'::timestamptz as z4, '0001-01-01 00:00:00'::timestamp as t1,
 '9999-12-31 23:59:59.999999'::timestamp as t2, '10000-01-01 00:00:00'::timestamp as t3,
 '2024-02-29 00:00:00.000001'::timestamp as t4, '2024-02-29 13:14:15.1'::timestamp as t5,
 '0001-01-01'::date as d1, '9999-12-31'::date as d2, '10000-01-01'::date as d3,
 '00:00:00'::time as h1, '24:00:00'::time as h2, '23:59:59.999999'::time as h3,
 '12:00:00.5-03:30'::timetz as h4"""


def test_datetime_encodings_at_the_year_range_edges(w):
    """Years 1 to 9999 are a timestamp extension (timestamptz) or ISO text;
    outside them the server's text; fractions without trailing zeros."""
    d = decode(w.conn.query(DATETIME_EDGES_SQL, result_format="msgpack"))
    row = dict(zip(d["columns"], d["rows"][0]))
    utc = datetime.timezone.utc
    for name, want in (("z1", datetime.datetime(1, 1, 1, tzinfo=utc)),
                       ("z2", datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=utc))):
        ts = row[name]
        assert (ts.to_datetime() if isinstance(ts, msgpack.Timestamp) else ts) == want, name
    assert row["z3"] == "10000-01-01 00:00:00+00" and row["z4"] == "0001-12-31 23:59:59.999999+00 BC"
    assert (row["t1"], row["t2"], row["t3"]) == ("0001-01-01T00:00:00", "9999-12-31T23:59:59.999999",
                                                 "10000-01-01 00:00:00")
    assert (row["t4"], row["t5"]) == ("2024-02-29T00:00:00.000001", "2024-02-29T13:14:15.1")
    assert (row["d1"], row["d2"], row["d3"]) == ("0001-01-01", "9999-12-31", "10000-01-01")
    assert (row["h1"], row["h2"], row["h3"], row["h4"]) == ("00:00:00", "24:00:00", "23:59:59.999999",
                                                           "12:00:00.5-03:30")


def test_decode_us_of_a_big_result_is_within_its_handling_time(w):
    """decode_us times every row of a result's first 16, then one row in 16
    counted for 16: the estimate is positive for a big result and never
    more than the time the request took (a sampled row preempted under load
    would count 16 times: it is capped)."""
    for sql, least in (("select 1", 0),
                       ("select g, repeat('x', 100) from generate_series(1, 100000) g", 1)):
        m = w.conn.query(sql, result_format="msgpack")["metrics"]
        assert least <= m["decode_us"] <= m["handler_us"], (sql, m)


def test_requests_and_results_at_the_hosts_size_edges(w, pg):
    """Requests around the in-process host's inline size (512 bytes) and
    results around its 16 columns kept in the job, with a type whose name is
    looked up on the server (an enum), give the same columns and values."""
    pg.execute("drop type if exists w6_mood; create type w6_mood as enum ('ok', 'sad')")
    try:
        c = w.conn
        for pad in range(430, 470):  # the envelope crosses 512 bytes in here
            d = decode(c.query(f"select 1 as one /* {'x' * pad} */"))
            assert d["rows"] == [[1]], pad
        for n in (15, 16, 17, 40):
            cols = ", ".join(f"{k} as c{k}" for k in range(n - 1)) + ", 'sad'::w6_mood as mood"
            for _ in range(2):  # prepared, then from the statement cache
                d = decode(c.query(f"select {cols}"))
                assert d["columns"] == [f"c{k}" for k in range(n - 1)] + ["mood"], n
                assert d["rows"] == [list(range(n - 1)) + ["sad"]], n
                assert d["types"][-1] == "w6_mood", d["types"]
    finally:
        pg.execute("drop type if exists w6_mood")


def test_untyped_params_infer(w):
    d = decode(w.conn.query(
        "select $1::timestamptz, $2::uuid, $3::numeric + 1, $4::jsonb -> 'a', $5::float8 * 2",
        {"mode": "positional", "values": ["2024-01-01 00:00:00+00", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                                          "1.50", '{"a": 3}', 2]}))
    assert d["rows"][0][1:] == ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "2.50", 3, 4.0]
    d = decode(w.conn.query("select $1 is null, $2, :a", None) if False else
               w.conn.query("select $1::int4 is null, $2", {"mode": "positional", "values": [
                   {"value": None, "type": "int4"}, {"value": "7", "type": "int8"}]}))
    assert d["rows"] == [[True, 7]] and d["types"] == ["bool", "int8"]
    r = w.conn.query("select $1::int4", {"mode": "positional", "values": ["nope"]})
    assert r["status"] == "DbError" and r["sqlstate"].startswith("22")
    r = w.conn.query("select $1", {"mode": "positional", "values": [{"value": 1, "type": "nosuchtype"}]})
    assert r["status"] == "InvalidInput" and "unknown type" in r["error"]
    d = decode(w.conn.query("select :b::text || :a::text", {"mode": "named", "values": [
        {"name": "a", "value": "A"}, {"name": "b", "value": "B"}]}))
    assert d["rows"] == [["BA"]]
    d = decode(w.conn.query("select $1::bytea, $2::bool", {"mode": "positional", "values": [b"\x01", False]},
                            result_format="msgpack"))
    assert d["rows"] == [[b"\x01", False]]


def test_read_only_guarantee(w, pg):
    c = w.conn
    for sql in ["insert into w6_items(name) values ('x')",
                "with x as (insert into w6_items(name) values ('y') returning id) select * from x",
                "select * from w6_items for update",
                "select nextval('w6_seq')",
                "update w6_items set qty = 5"]:
        r = c.query(sql)
        assert r["status"] == "DbError" and r["sqlstate"] == "25006", (sql, r)
    # set_config tricks do not survive the request
    r = c.query("select set_config('default_transaction_read_only', 'off', false)")
    assert r["status"] == "Ok"
    r = c.query("select set_config('transaction_read_only', 'off', false)")
    assert r["status"] == "DbError"
    r = c.query("delete from w6_items")
    assert r["sqlstate"] == "25006"
    assert pg.execute("select count(*) from w6_items").fetchone()[0] == 2
    assert pg.execute("select last_value from w6_seq").fetchone()[0] == 1


@pytest.fixture(params=["cached", "unnamed", "simple"])
def wmode(pg, request):
    """A worker per statement mode: db_query is framed in BEGIN READ ONLY /
    ROLLBACK in one round trip by each mode's own path."""
    pg.execute("create or replace function w6_write() returns int language sql as "
               "$$ insert into w6_items(name) values ('fn') returning id $$")
    with Worker({"default": DSN}, "--allow-write", "default",
                "--pool", f"default:statement_mode={request.param}") as wk:
        yield wk
    pg.execute("drop function if exists w6_write()")


def test_read_only_guarantee_every_mode(wmode, pg):
    c = wmode.conn
    for sql in ["with d as (delete from w6_items returning id) select count(*) from d",
                "select * from w6_items for update",
                "select nextval('w6_seq')",
                "select w6_write()"]:
        r = c.query(sql)
        assert r["status"] == "DbError" and r["sqlstate"] == "25006", (sql, r)
    # one statement only: it cannot COMMIT its way out of the frame
    r = c.query("commit; delete from w6_items")
    assert r["status"] == "DbError" and r["sqlstate"] == "42601", r
    # a COMMIT or SET TRANSACTION alone ends or changes nothing that lasts
    for sql in ["commit", "set transaction read write"]:
        c.query(sql)
        r = c.query("delete from w6_items")
        assert r["sqlstate"] == "25006", (sql, r)
    # what a query sets does not survive it, for the next request on the
    # same connection (one connection: max_conns is 10 but idle ones are
    # reused first)
    assert decode(c.query("select set_config('search_path', 'pg_catalog', false)"))
    assert decode(c.query("select current_setting('search_path')"))["rows"] == [['"$user", public']]
    r = c.query("select set_config('default_transaction_read_only', 'off', false)")
    assert r["status"] == "Ok"
    assert c.query("delete from w6_items")["sqlstate"] == "25006"
    assert pg.execute("select count(*) from w6_items").fetchone()[0] == 2
    assert pg.execute("select last_value, is_called from w6_seq").fetchone() == (1, False)


# simple mode gets every value as text from the server; these it passes on
# as the server's text instead of as typed values (docs/worker.md)
SIMPLE_MODE_TEXT = {"arr", "arrlb", "arre", "rg", "rge", "rgi", "mr"}


@pytest.mark.parametrize("fmt", ["msgpack", "json", "arrow_ipc"])
def test_every_mode_gives_the_same_values(pg, fmt):
    """unnamed mode (Parse/Describe/Flush, then Bind/Execute/Sync) gets the
    same binary results as cached mode: what the client receives is byte for
    byte the same. simple mode differs only in the columns it passes on as
    text."""
    got = {}
    for mode in ["cached", "unnamed", "simple"]:
        with Worker({"default": DSN}, "--pool", f"default:statement_mode={mode}") as wk:
            r = wk.conn.query(TYPES_SQL, result_format=fmt)
            assert r["status"] == "Ok", (mode, r)
            got[mode] = r["payload"]
    assert got["unnamed"] == got["cached"]
    if fmt == "arrow_ipc":
        return
    simple, cached = decode({**r, "payload": got["simple"]}), decode({**r, "payload": got["cached"]})
    names = [c["name"] if isinstance(c, dict) else c for c in cached["columns"]]
    differ = {n for n, a, b in zip(names, simple["rows"][0], cached["rows"][0])
              if a != b and not (isinstance(a, float) and math.isnan(a) and math.isnan(b))}
    assert differ == SIMPLE_MODE_TEXT


TEXT_EDGES_SQL = """select '\\x'::bytea as b0, '\\x00ff10'::bytea as b1,
 decode('5c006162', 'hex') as b2, '2024-02-29 13:14:15.123456'::timestamp as t1,
 '0044-03-15 12:00:00 BC'::timestamp as t2, '294276-12-31 23:59:59.999999'::timestamp as t3,
 '1999-12-31 23:59:59.5'::timestamp as t4, 'infinity'::timestamp as t5,
 '2024-02-29 13:14:15.25+02'::timestamptz as z1, '1900-01-01 00:00:00+00'::timestamptz as z2,
 '0044-03-15 12:00:00+00 BC'::timestamptz as z3, '-infinity'::timestamptz as z4,
 '0'::interval as i0, '1 year 2 mons 3 days 04:05:06.5'::interval as i1,
 '-1 year -2 mons +3 days -04:05:06.000001'::interval as i2, '-1 day +02:03:00'::interval as i3,
 '2562047788 hours'::interval as i4, '-178000000 years'::interval as i5,
 '1 mon -1 day'::interval as i6, '00:00:00.1'::interval as i7"""


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "Europe/Amsterdam", "America/St_Johns"])
def test_simple_mode_types_bytea_timestamps_intervals_from_text(pg, tz):
    """simple mode parses the server's text of bytea, timestamps and intervals back into
    what cached mode gives, in any session time zone (Amsterdam printed
    1900 with a +00:19:32 offset; St. John's has half hours)."""
    pg.execute("drop role if exists w6_tz")
    pg.execute("create role w6_tz login superuser")
    pg.execute(f"alter role w6_tz set timezone = '{tz}'")
    try:
        dsn = (f"host={os.environ['MOLT_TEST_PGHOST']} port={os.environ['MOLT_TEST_PGPORT']} "
               "user=w6_tz dbname=molt_test")
        got = {}
        for mode in ["cached", "simple"]:
            with Worker({"default": dsn}, "--pool", f"default:statement_mode={mode}") as wk:
                for fmt in ["msgpack", "json"]:
                    r = wk.conn.query(TEXT_EDGES_SQL, result_format=fmt)
                    assert r["status"] == "Ok", (mode, r)
                    got[mode, fmt] = r["payload"]
                assert decode(wk.conn.query("show timezone"))["rows"] == [[tz]]
        for fmt in ["msgpack", "json"]:
            assert got["simple", fmt] == got["cached", fmt], fmt
    finally:
        pg.execute("drop role if exists w6_tz")


# One column per scalar of the library's type table, with the values where a
# text form and a binary form could come apart (zones, BC, infinities,
# byte 0, high-bit "char", NaN, -0, extreme floats and numerics).
SCALAR_EDGES_SQL = """select true as b, false as bf, (-32768)::int2 as i2,
 (-2147483648)::int4 as i4, (-9223372036854775808)::int8 as i8, 4294967295::oid as o,
 '-0'::float4 as f4z, 3.4028235e38::float4 as f4max, 1e-45::float4 as f4min, 'NaN'::float4 as f4nan,
 '-Infinity'::float4 as f4inf, 5e-324::float8 as f8min, 1.7976931348623157e308::float8 as f8max,
 'Infinity'::float8 as f8inf, '-0'::float8 as f8z, 0.1::float8 as f8,
 0.000::numeric as n0, (-12.30)::numeric as nneg, '-Infinity'::numeric as ninf,
 1e-20::numeric as nsmall, ''::text as t0, 'héllo'::text as t1, 'a  '::char(5) as bp,
 'x'::varchar as vc, repeat('n', 63)::name as nm, ''::"char" as ch0, 'a'::"char" as ch1,
 'é'::"char" as ch2, ''::bytea as by0, '\\x005c27ff'::bytea as by1,
 '00000000-0000-0000-0000-000000000000'::uuid as u,
 '0044-03-15 BC'::date as dbc, '5874897-12-31'::date as dmax, '-infinity'::date as dninf,
 '24:00:00'::time as tm24, '00:00:00.000001'::time as tm0,
 '12:00:00+00'::timetz as tz0, '00:00:00-15:59:59'::timetz as tzw, '23:59:59.5+15:59'::timetz as tze,
 '4713-01-01 00:00:00 BC'::timestamp as tsmin, '294276-12-31 23:59:59.999999'::timestamp as tsmax,
 '1900-01-01 00:00:00+00'::timestamptz as tstz1900, 'infinity'::timestamptz as tstzinf,
 '-178000000 years'::interval as ivmin, '-1 mon -1 day -00:00:01.25'::interval as ivneg,
 '"x"'::json as js, '[]'::jsonb as jb, '<a>x</a>'::xml as x"""


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_every_scalar_type_same_in_simple_mode(pg, fmt):
    """Each scalar of the type table, read as text (simple mode) and as binary
    (cached mode), reaches the client as the same value: the worker writes
    both through the same value class, so no type may differ."""
    got = {}
    for mode in ["cached", "simple"]:
        with Worker({"default": DSN}, "--pool", f"default:statement_mode={mode}") as wk:
            r = wk.conn.query(SCALAR_EDGES_SQL, result_format=fmt)
            assert r["status"] == "Ok", (mode, r)
            got[mode] = decode(r)
    cached, simple = got["cached"], got["simple"]
    assert cached["types"] == simple["types"]
    differ = [(n, a, b) for n, a, b in zip(cached["columns"], simple["rows"][0], cached["rows"][0])
              if a != b and not (isinstance(a, float) and math.isnan(a) and math.isnan(b))]
    assert differ == []
    row = dict(zip(cached["columns"], cached["rows"][0]))
    assert row["tz0"] == "12:00:00+00:00" and row["tzw"] == "00:00:00-15:59:59"
    assert row["ch0"] == "" and row["ch2"] == "\\303" and row["dbc"] == "0044-03-15 BC"


def test_query_error_leaves_connection_clean(wmode, pg):
    """The statement's own error is what the client sees, and the frame's
    ROLLBACK already ran: the pool finds the connection idle and has no
    dirty connection to roll back."""
    c = wmode.conn
    assert decode(c.query("select 1"))["rows"] == [[1]]
    r = c.query("select * from w6_no_such_table")
    assert r["status"] == "DbError" and r["sqlstate"] == "42P01", r
    assert "w6_no_such_table" in r["error"]
    r = c.query("select 1/0")
    assert r["status"] == "DbError" and r["sqlstate"] == "22012", r
    assert decode(c.query("select 2"))["rows"] == [[2]]
    st = decode(c.call("stats"))["aliases"]["default"]
    assert st["rollbacks"] == 0 and st["in_use"] == 0, st
    # a statement whose cached plan went stale is transparently re-prepared
    pg.execute("create table w6_shape(a int)")
    try:
        assert decode(c.query("select * from w6_shape"))["columns"] == ["a"]
        pg.execute("alter table w6_shape add column b int")
        assert decode(c.query("select * from w6_shape"))["columns"] == ["a", "b"]
    finally:
        pg.execute("drop table w6_shape")


def test_exec_and_statements(w, pg):
    c = w.conn
    r = c.call("db_exec", {"sql": "insert into w6_items(name) values ('c') returning id, name",
                           "allow_write": True})
    d = decode(r)
    assert d["rows_affected"] == 1 and d["columns"] == ["id", "name"] and d["rows"][0][1] == "c"
    r = c.call("db_exec", {"allow_write": True, "isolation": "repeatable_read", "statements": [
        {"sql": "insert into w6_items(name) values ($1)", "params": {"mode": "positional", "values": ["d"]}},
        {"sql": "insert into w6_items(name) values ('a')"}]})
    assert r["status"] == "DbError" and r["sqlstate"] == "23505"
    assert r["error_detail"]["constraint"] == "w6_items_name_key"
    assert pg.execute("select count(*) from w6_items where name = 'd'").fetchone()[0] == 0
    r = c.call("db_exec", {"allow_write": True, "statements": [
        {"sql": "update w6_items set qty = qty + 1 where name = 'a'"},
        {"sql": "delete from w6_items where name = 'c'"}]})
    assert [x["rows_affected"] for x in decode(r)["results"]] == [1, 1]
    assert pg.execute("select qty from w6_items where name = 'a'").fetchone()[0] == 2
    r = c.call("db_exec", {"sql": "delete from w6_items"})
    assert r["status"] == "InvalidInput"


def test_max_rows_cancels_rest(w, pg):
    # 50M rows take the server many seconds; stopping after 5 must not
    t0 = time.monotonic()
    d = decode(w.conn.query("select generate_series(1, 50000000) /* w6-trunc */",
                            max_rows=5, timeout_ms=20000))
    assert d["truncated"] is True and [r[0] for r in d["rows"]] == [1, 2, 3, 4, 5]
    assert time.monotonic() - t0 < 2
    assert wait_gone(pg, "w6-trunc")
    assert decode(w.conn.query("select 3"))["rows"] == [[3]]


def test_streaming_and_arrow(w):
    r = w.conn.query("select g from generate_series(1, 20) g", stream=True, batch_rows=8,
                     result_format="msgpack")
    parts = [decode(p) for p in r["parts"]]
    assert parts[0] == {"columns": ["g"], "types": ["int4"]}
    assert [len(p["rows"]) for p in parts[1:]] == [8, 8, 4]
    assert decode(r) == {"row_count": 20, "truncated": False}
    ipc = pytest.importorskip("pyarrow.ipc")
    r = w.conn.query("select g::int8 as g, g::text as t from generate_series(1, 20) g",
                     result_format="arrow_ipc", stream=True, batch_rows=8)
    t = ipc.open_stream(b"".join(p["payload"] for p in r["parts"]) + r["payload"]).read_all()
    assert t.column("g").to_pylist() == list(range(1, 21))
    r = w.conn.query("select 1.5::numeric(4,2) as n", result_format="arrow_ipc")
    t = ipc.open_stream(decode(r)).read_all()
    assert str(t.schema.field("n").type) == "decimal128(4, 2)"


def test_timeout_stops_server_query(w, pg):
    t0 = time.monotonic()
    r = w.conn.query("select pg_sleep(30) /* w6-timeout */", timeout_ms=400)
    took = time.monotonic() - t0
    assert r["status"] == "Timeout" and took < 0.5, (r, took)
    assert wait_gone(pg, "w6-timeout")
    assert decode(w.conn.query("select 1"))["rows"] == [[1]]


def test_cancel_and_ping_while_slow(w, pg):
    c = w.conn
    slow = c.request("db_query", {"sql": "select pg_sleep(30) /* w6-cancel */"}, timeout_ms=20000)
    deadline = time.monotonic() + 3
    while active(pg, "w6-cancel") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    assert c.call("ping")["status"] == "Ok"
    assert time.monotonic() - t0 < 1.0  # the sleep runs 30 s
    cid = c.request("cancel", {"request_id": slow})
    got = {}
    for _ in range(2):
        x = c.recv()
        got[x["request_id"]] = x
    assert got[slow]["status"] == "Cancelled" and decode(got[cid]) == {"found": True}
    assert wait_gone(pg, "w6-cancel")


def test_disconnect_cancels(pg):
    with Worker({"default": DSN}, stdio=False) as wk:
        c1 = wk.connect()
        c1.request("db_query", {"sql": "select pg_sleep(30) /* w6-disc */"}, timeout_ms=20000)
        deadline = time.monotonic() + 3
        while active(pg, "w6-disc") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert active(pg, "w6-disc") == 1
        c1.sock.close()
        assert wait_gone(pg, "w6-disc", within=2)
        assert decode(wk.conn.query("select 2"))["rows"] == [[2]]


def test_stats(w):
    w.conn.query("select 1")
    st = decode(w.conn.call("stats"))
    a = st["aliases"]["default"]
    assert a["backend"] == "postgresql"
    for k in ("size", "in_use", "idle", "waiters"):
        assert k in a
    assert st["worker"]["ok"] >= 1


def test_pool_exhausted_is_busy(pg):
    with Worker({"default": DSN}, "--pool", "default:max_conns=1",
                "--pool", "default:max_wait_ms=200") as wk:
        c = wk.conn
        slow = c.request("db_query", {"sql": "select pg_sleep(2) /* w6-busy */"}, timeout_ms=5000)
        time.sleep(0.2)
        t0 = time.monotonic()
        r = c.call("db_query", {"sql": "select 1"})
        assert r["status"] == "Busy" and time.monotonic() - t0 < 1.0, r
        r = c.recv(timeout=10)
        assert r["request_id"] == slow and r["status"] == "Ok"


def test_unreachable_server_is_a_connect_error():
    """Answered at the failed attempt (not after max_wait_ms), DbError with
    the SQLSTATE of a connection that could not be made."""
    with Worker({"default": "postgresql://molt@127.0.0.1:1/nodb?connect_timeout=1"},
                "--pool", "default:max_wait_ms=5000") as wk:
        t0 = time.monotonic()
        r = wk.conn.call("db_query", {"sql": "select 1"})
        assert r["status"] == "DbError" and r["sqlstate"] == "08001", r
        assert "Connection refused" in r["error"], r
        assert time.monotonic() - t0 < 2
        assert "127.0.0.1:1" not in r["error"] or "molt@" not in r["error"]


def test_arrow_nested_types(w):
    ipc = pytest.importorskip("pyarrow.ipc")
    r = w.conn.query("select '{{1,2},{3,4}}'::int4[] as a, int4range(1, 5) as rg, "
                     "'[0:1]={5,6}'::int8[] as b from generate_series(1, 3)",
                     result_format="arrow_ipc")
    t = ipc.open_stream(decode(r)).read_all()
    row = t.to_pylist()[0]
    assert row["a"] == {"lower_bounds": [1, 1], "values": [[1, 2], [3, 4]]}
    assert row["b"] == {"lower_bounds": [0], "values": [5, 6]}
    assert row["rg"] == {"empty": False, "lower": {"value": 1, "inclusive": True},
                         "upper": {"value": 5, "inclusive": False}}
    # streamed: the schema (taken after the first batch's rows) comes first
    r = w.conn.query("select '{{1,2},{3,4}}'::int4[] as a from generate_series(1, 5)",
                     result_format="arrow_ipc", stream=True, batch_rows=2)
    assert len(r["parts"]) == 4  # schema + batches of 2, 2, 1
    t = ipc.open_stream(b"".join(p["payload"] for p in r["parts"]) + r["payload"]).read_all()
    assert t.num_rows == 5 and t.column("a").to_pylist()[4]["values"] == [[1, 2], [3, 4]]


def test_user_defined_type_names(w, pg):
    """types hold pg_type's names for enums, composites, domains and arrays
    of them; the lookup is done once per alias, not per query."""
    pg.execute("drop table if exists w6_typed; drop type if exists w6_mood, w6_pair cascade; "
               "drop domain if exists w6_posint")
    pg.execute("create type w6_mood as enum ('sad', 'happy')")
    pg.execute("create type w6_pair as (a int, b text)")
    pg.execute("create domain w6_posint as int check (value > 0)")
    pg.execute("create table w6_typed(m w6_mood, ms w6_mood[], p w6_pair, d w6_posint)")
    pg.execute("insert into w6_typed values ('happy', '{sad,happy}', row(1, 'x'), 5)")
    try:
        c = w.conn
        sql = "select m, ms, p, d, m::text as t from w6_typed"
        before = decode(c.call("stats"))["aliases"]["default"]["requests"]
        for fmt in ("msgpack", "json"):
            r = c.query(sql, result_format=fmt)
            d = decode(r)
            # a domain's columns carry its base type (the server describes them so)
            assert d["types"] == ["w6_mood", "_w6_mood", "w6_pair", "int4", "text"], d
            assert d["rows"][0][0] == "happy" and d["rows"][0][3] == 5
        # streamed: the names are in the first part already
        r = c.query(sql, stream=True, result_format="msgpack")
        assert decode(r["parts"][0])["types"][:3] == ["w6_mood", "_w6_mood", "w6_pair"]
        after = decode(c.call("stats"))["aliases"]["default"]["requests"]
        # three queries and one lookup: no lookup per query
        assert after - before == 4, (before, after)
        # a type made later is looked up when it first shows up
        pg.execute("create type w6_late as enum ('x')")
        assert decode(c.query("select 'x'::w6_late as l"))["types"] == ["w6_late"]
    finally:
        pg.execute("drop table if exists w6_typed; drop type if exists w6_mood, w6_pair, "
                   "w6_late cascade; drop domain if exists w6_posint")


def test_type_name_lookup_without_a_free_connection(pg):
    """With one connection the lookup cannot run beside the query: the OID
    is shown at once, the query's rows are intact, and the lookup runs once
    the connection is free, for the next query."""
    pg.execute("drop type if exists w6_solo cascade")
    pg.execute("create type w6_solo as enum ('only')")
    oid = pg.execute("select 'w6_solo'::regtype::oid").fetchone()[0]
    try:
        with Worker({"default": DSN}, "--pool", "default:max_conns=1") as wk:
            t0 = time.monotonic()
            d = decode(wk.conn.query("select 'only'::w6_solo as s, g from generate_series(1, 3) g"))
            assert time.monotonic() - t0 < 0.5  # no wait for a lookup that cannot run
            assert d["types"] == [str(oid), "int4"] and [r[1] for r in d["rows"]] == [1, 2, 3]
            # with the connection free again the name is found
            assert decode(wk.conn.query("select 'only'::w6_solo as s"))["types"] == ["w6_solo"]
    finally:
        pg.execute("drop type if exists w6_solo cascade")
