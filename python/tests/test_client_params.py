"""molt_db_adapter's array parameters, executemany, result decoding options
and DbError attributes, against the real worker on a real PostgreSQL
(MOLT_TEST_DSN_APP from scripts/with_pg.sh; psycopg on MOLT_TEST_DSN is the
oracle for what the server holds) and a real SQLite file."""

import asyncio
import decimal
import os
import sqlite3

import pytest

from molt_db_adapter import AsyncMoltClient, DbError, InvalidInput, MoltClient, Typed
from worker_client import WORKER_BIN, Worker, decode

DSN = os.environ.get("MOLT_TEST_DSN")
APP_DSN = os.environ.get("MOLT_TEST_DSN_APP")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.usefixtures("transport"),  # on the worker and in process
]
needs_pg = pytest.mark.skipif(
    not (DSN and APP_DSN), reason="MOLT_TEST_DSN(_APP) not set (run under scripts/with_pg.sh)"
)

# str elements the array literal must keep exactly: quotes, backslashes,
# separators, braces, blanks, the word NULL, the empty string, non-ASCII
NASTY = ['a"b', "c\\d", "e,f", "{g}", " h ", "NULL", "null", "", "\\", '"', "ü€😀", "x\ty\nz"]


def pg_cmd(*extra):
    return [WORKER_BIN, "--stdio", "--db", f"default={APP_DSN}", "--allow-write", "default", *extra]


@pytest.fixture(scope="module")
def pg():
    if not (DSN and APP_DSN):
        pytest.skip("MOLT_TEST_DSN(_APP) not set (run under scripts/with_pg.sh)")
    psycopg = pytest.importorskip("psycopg")
    con = psycopg.connect(DSN, autocommit=True)
    con.execute("drop table if exists cp_items, cp_many")
    con.execute("create table cp_items (id int primary key, name text not null, tags text[], "
                "grid int4[], price numeric check (price >= 0), doc jsonb)")
    con.execute("insert into cp_items (id, name) values (1, 'one'), (2, 'two'), (3, 'th''ree')")
    con.execute("create table cp_many (id int primary key, v text)")
    con.execute("grant all on cp_items, cp_many to molt_app")
    yield con
    con.execute("drop table if exists cp_items, cp_many")
    con.close()


@pytest.fixture
def c(pg):
    with MoltClient(pg_cmd()) as client:
        yield client


# ---- arrays ----------------------------------------------------------------

@needs_pg
def test_int4_array_with_nulls_and_nesting(c):
    assert c.query("select $1::int4[]", [[1, None, 3]]).rows == [([1, None, 3],)]
    r = c.query("select $1::int4[], array_ndims($1::int4[])", [[[1, 2], [None, 4]]])
    assert r.rows == [([[1, 2], [None, 4]], 2)]
    three = [[[1, 2], [3, 4]], [[5, 6], [7, None]]]
    assert c.query("select $1::int4[]", [three]).rows == [(three,)]
    # untyped: the elements give the type
    r = c.query("select $1, $2, $3, $4", [[1, 2], [1.5, 2], [True, None], [b"\x00\xff", None]])
    assert r.types == ["_int8", "_float8", "_bool", "_bytea"]
    assert r.rows == [([1, 2], [1.5, 2.0], [True, None], [b"\x00\xff", None])]
    assert c.query("select $1::int4[], cardinality($1::int4[])", [[]]).rows == [([], 0)]
    assert c.query("select $1", [(7, 8)]).rows == [([7, 8],)]


@needs_pg
def test_text_array_quotes_backslashes_commas_and_null_strings(c, pg):
    values = NASTY + [None]
    r = c.query("select $1::text[], cardinality($1::text[]), array_position($1::text[], NULL)",
                [values])
    assert r.rows == [(values, len(values), len(values))]
    # what the server stores, read back by psycopg
    c.execute("update cp_items set tags = $1 where id = 1", [values])
    assert pg.execute("select tags from cp_items where id = 1").fetchone()[0] == values
    # the string "NULL" is not a NULL, and nothing split into more elements
    assert pg.execute("select tags[6] is null, tags[13] is null, cardinality(tags) "
                      "from cp_items where id = 1").fetchone() == (False, True, len(values))
    nested = [['a"', None], ["NULL", "\\"]]
    c.execute("update cp_items set tags = $1::text[] where id = 2", [nested])
    assert pg.execute("select tags from cp_items where id = 2").fetchone()[0] == nested


@needs_pg
def test_any_with_a_list(c):
    r = c.query("select id from cp_items where id = any($1) order by id", [[1, 3, 99]])
    assert r.rows == [(1,), (3,)]
    # str lists go untyped: the server takes the column's type
    r = c.query("select id from cp_items where name = any($1) order by id", [["th'ree", "one", "x"]])
    assert r.rows == [(1,), (3,)]
    assert c.query("select count(*) from cp_items where id = any($1)", [[]]).rows == [(0,)]
    r = c.query("select id from cp_items where id = any(:ids) order by id", {"ids": [2]})
    assert r.rows == [(2,)]


@needs_pg
def test_typed_array_and_the_typed_value_form(c):
    r = c.query("select $1", [Typed([1, None], "int4[]")])
    assert (r.types, r.rows) == (["_int4"], [([1, None],)])
    w = Worker({"default": DSN})
    with w:
        resp = w.conn.query("select $1", {"mode": "positional",
                                     "values": [{"value": ["x", None], "type": "varchar[]"}]})
        doc = decode(resp)
        assert doc["types"] == ["_varchar"] and doc["rows"] == [[["x", None]]]


@needs_pg
def test_hostile_arrays_are_invalid_input_and_the_worker_lives(pg):
    """Raw payloads, past the client's own checks."""
    deep = 1
    for _ in range(7):
        deep = [deep]
    with Worker({"default": DSN}) as w:
        for needle, value in [("mix types", [1, "a"]), ("mix types", [True, 1]),
                              ("mix types", [b"x", "x"]), ("ragged", [[1], [2, 3]]),
                              ("ragged", [[], [1]]), ("mixes lists and values", [1, [2]]),
                              ("mixes lists and values", [[1], 2]),
                              ("more than 6 dimensions", deep), ("array elements are", [{"a": 1}]),
                              ("signed 64-bit", [2**64 - 1])]:
            resp = w.conn.query("select $1", {"mode": "positional", "values": [value]})
            assert resp["status"] == "InvalidInput", (value, resp)
            assert needle in resp["error"], (value, resp["error"])
        # a big array passes whole, and the worker still answers
        big = list(range(300_000))
        doc = decode(w.conn.query("select cardinality($1::int8[]), ($1::int8[])[300000]",
                             {"mode": "positional", "values": [big]}))
        assert doc["rows"] == [[300_000, 299_999]]
        assert decode(w.conn.query("select 1"))["rows"] == [[1]]


def test_client_refuses_deep_and_unsendable_elements():
    with MoltClient([WORKER_BIN, "--stdio", "--db", "default=sqlite:///:memory:"]) as c:
        deep = [1]
        for _ in range(6):
            deep = [deep]
        with pytest.raises(InvalidInput, match="more than 6 dimensions") as e:
            c.query("select $1", [deep])
        assert e.value.client_side
        with pytest.raises(InvalidInput, match="a dict cannot be sent"):
            c.query("select $1", [[{"a": 1}]])


def test_sqlite_refuses_arrays_and_the_file_is_unchanged(tmp_path):
    path = tmp_path / "a.db"
    db = sqlite3.connect(path)
    db.execute("create table t (id integer primary key, v text)")
    db.commit()
    db.close()
    cmd = [WORKER_BIN, "--stdio", "--db", f"default=sqlite:///{path}", "--allow-write", "default"]
    with MoltClient(cmd) as c:
        with pytest.raises(InvalidInput, match="SQLite has no array type") as e:
            c.execute("insert into t (v) values ($1)", [["a", "b"]])
        assert not e.value.client_side
        with pytest.raises(InvalidInput, match="SQLite has no array type"):
            c.executemany("insert into t (v) values ($1)", [["x"], [["a"]]])
    assert sqlite3.connect(path).execute("select count(*) from t").fetchone() == (0,)


# ---- executemany -----------------------------------------------------------

@needs_pg
def test_executemany_10k_rows_all_or_nothing(c, pg):
    pg.execute("delete from cp_many")
    rows = [(i, f"v{i}") for i in range(10_000)]
    assert c.executemany("insert into cp_many values ($1, $2)", rows) == 10_000
    assert pg.execute("select count(*), sum(id) from cp_many").fetchone() == (10_000, sum(range(10_000)))
    pg.execute("delete from cp_many")
    rows[4999] = (4998, "dup")  # row 5000 breaks the primary key
    with pytest.raises(DbError) as e:
        c.executemany("insert into cp_many values ($1, $2)", rows)
    assert e.value.sqlstate == "23505" and e.value.detail == "Key (id)=(4998) already exists."
    assert pg.execute("select count(*) from cp_many").fetchone() == (0,)
    assert c.executemany("update cp_many set v = $1", []) == 0
    with pytest.raises(InvalidInput, match="at most 10000"):
        c.executemany("insert into cp_many values ($1, $2)", [(i, "x") for i in range(10_001)])
    assert pg.execute("select count(*) from cp_many").fetchone() == (0,)


@needs_pg
def test_executemany_async_counts_rows_affected(pg):
    pg.execute("delete from cp_many")

    async def run():
        async with AsyncMoltClient(pg_cmd()) as ac:
            n = await ac.executemany("insert into cp_many values ($1, $2)", [(i, None) for i in range(50)])
            m = await ac.executemany("update cp_many set v = $2 where id % 10 = $1", [(0, "a"), (1, "b")])
            return n, m

    assert asyncio.run(run()) == (50, 10)
    assert pg.execute("select count(*) from cp_many where v is not null").fetchone() == (10,)


def test_executemany_sqlite(tmp_path):
    path = tmp_path / "m.db"
    sqlite3.connect(path).execute("create table t (id integer primary key, v text)").connection.commit()
    cmd = [WORKER_BIN, "--stdio", "--db", f"default=sqlite:///{path}", "--allow-write", "default"]
    with MoltClient(cmd) as c:
        assert c.executemany("insert into t values ($1, $2)", [(i, "x") for i in range(100)]) == 100
        with pytest.raises(DbError):
            c.executemany("insert into t values ($1, $2)", [(1000, "y"), (5, "dup")])
    assert sqlite3.connect(path).execute("select count(*), max(id) from t").fetchone() == (100, 99)


# ---- decoding --------------------------------------------------------------

DEC_SQL = ("""select 1.50::numeric n, '{1.5,NULL,NaN}'::numeric[] na, '{"a": [1, 2.5]}'::jsonb j, """
           """'"s"'::json js, array['{"b": null}'::jsonb] ja, null::jsonb jn""")
DECODED = (decimal.Decimal("1.50"), [decimal.Decimal("1.5"), None, "NaN"], {"a": [1, 2.5]}, "s",
           [{"b": None}], None)


def same(row, want):
    """Decimal('NaN') != Decimal('NaN'): compare NaN by its text."""
    def norm(v):
        if isinstance(v, decimal.Decimal) and v.is_nan():
            return "NaN"
        return [norm(e) for e in v] if isinstance(v, list) else v
    return [norm(v) for v in row] == [norm(v) for v in want] and \
        all(type(a) is type(b) for a, b in zip(row, want) if b is not None and not isinstance(b, list))


@needs_pg
def test_decimal_and_json_decoding_per_client_and_per_call(pg):
    with MoltClient(pg_cmd(), decode_numeric="decimal", decode_json=True) as c:
        for fmt in ("msgpack", "json"):
            r = c.query(DEC_SQL, result_format=fmt)
            assert same(r.rows[0], DECODED), (fmt, r.rows)
            assert r.dicts()[0]["n"] == decimal.Decimal("1.50")
        # a call goes back to the plain values
        r = c.query(DEC_SQL, decode_numeric="str", decode_json=False)
        assert r.rows[0][:3] == ("1.50", ["1.5", None, "NaN"], '{"a": [1, 2.5]}')
        with c.stream(DEC_SQL, batch_rows=1) as s:
            assert same(list(s)[0], DECODED)
        c.execute("update cp_items set price = 19.99, doc = $1 where id = 3", ['{"k": 1}'])
        r = c.execute("update cp_items set price = price + 0.01 where id = 3 returning price, doc")
        assert r.rows == [(decimal.Decimal("20.00"), {"k": 1})]
    with MoltClient(pg_cmd()) as c:  # defaults: as before
        assert c.query(DEC_SQL).rows[0][:3] == ("1.50", ["1.5", None, "NaN"], '{"a": [1, 2.5]}')
        r = c.query(DEC_SQL, decode_numeric="decimal")
        assert r.rows[0][0] == decimal.Decimal("1.50") and r.rows[0][2] == '{"a": [1, 2.5]}'
        with pytest.raises(InvalidInput, match="decode_numeric"):
            c.query("select 1", decode_numeric="float")
    with pytest.raises(InvalidInput, match="decode_json"):
        MoltClient(pg_cmd(), decode_json="yes")


@needs_pg
def test_decimal_decoding_async(pg):
    async def run():
        async with AsyncMoltClient(pg_cmd(), decode_numeric="decimal") as ac:
            r = await ac.query("select 0.1::numeric + 0.2::numeric")
            rows = []
            async with ac.stream("select 2.50::numeric") as s:
                async for row in s:
                    rows.append(row)
            return r.rows, rows

    assert asyncio.run(run()) == ([(decimal.Decimal("0.3"),)], [(decimal.Decimal("2.50"),)])


# ---- DbError attributes ----------------------------------------------------

@needs_pg
def test_dberror_typed_attributes(c):
    with pytest.raises(DbError) as e:
        c.execute("insert into cp_items (id, name) values (1, 'again')")
    err = e.value
    assert (err.sqlstate, err.detail, err.schema_name, err.table_name, err.constraint_name) == (
        "23505", "Key (id)=(1) already exists.", "public", "cp_items", "cp_items_pkey")
    assert err.fields["constraint"] == "cp_items_pkey" and err.fields["detail"] == err.detail
    assert err.hint is None and err.position is None
    with pytest.raises(DbError) as e:
        c.execute("insert into cp_items (id, name) values (9, NULL)")
    assert (e.value.sqlstate, e.value.column_name) == ("23502", "name")
    with pytest.raises(DbError) as e:
        c.execute("update cp_items set price = -1 where id = 1")
    assert (e.value.sqlstate, e.value.constraint_name) == ("23514", "cp_items_price_check")
    with pytest.raises(DbError) as e:
        c.query("select nosuch from cp_items")
    assert e.value.sqlstate == "42703" and e.value.position == 8
    with pytest.raises(DbError) as e:
        c.query("select * from cp_items where id = 1 + 'x'")
    assert isinstance(e.value.position, int)


def test_dberror_fields_from_a_hostile_worker_stay_typed():
    e = DbError("x", sqlstate="23505", detail={"position": "9" * 5000, "detail": 5, "hint": ["h"]})
    assert e.position is None and e.detail is None and e.hint is None
    assert e.fields["detail"] == 5
    assert DbError("x", detail={"position": "²"}).position is None
    assert DbError("x", detail={"position": "12"}).position == 12

