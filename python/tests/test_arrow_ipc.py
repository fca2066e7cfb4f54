"""Arrow IPC streams from molt_arrow_dump, read by pyarrow and compared value
for value with what psycopg 3 (binary) returns for the same query.

Needs MOLT_TEST_DSN (scripts/with_pg.sh) and a build with the tool
(MOLT_BUILD_DIR, default build/: tools/molt_arrow_dump).
"""
import datetime
import decimal
import json
import math
import os
import pathlib
import subprocess
import uuid

import pytest

pa = pytest.importorskip("pyarrow")
psycopg = pytest.importorskip("psycopg")

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("MOLT_BUILD_DIR", ROOT / "build"))
DUMP = BUILD / "tools" / "molt_arrow_dump"


@pytest.fixture(scope="module")
def dsn():
    d = os.environ.get("MOLT_TEST_DSN")
    if not d:
        pytest.skip("MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)")
    assert DUMP.exists(), f"{DUMP} is missing: build first (make build)"
    return d


@pytest.fixture(scope="module")
def pg(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


def dump(dsn, sql, batch_rows=None, extra=()):
    args = [str(DUMP), "--dsn", dsn, "--sql", sql, *extra]
    if batch_rows:
        args += ["--batch-rows", str(batch_rows)]
    return subprocess.run(args, capture_output=True, timeout=120)


def arrow(dsn, sql, batch_rows=None, extra=()):
    p = dump(dsn, sql, batch_rows, extra)
    assert p.returncode == 0, p.stderr.decode()
    reader = pa.ipc.open_stream(p.stdout)
    table = reader.read_all()
    table.validate(full=True)
    return table


def storage(col):
    """The storage values of a column (extension types unwrapped)."""
    col = col.combine_chunks()
    if isinstance(col.type, pa.ExtensionType) or hasattr(col, "storage"):
        col = col.storage
    return col


def to_python(col):
    return storage(col).to_pylist()


def interval_as_timedelta(v):
    # psycopg folds months into days: a year is 365 days, a month 30.
    years, months = divmod(v["months"], 12)
    return datetime.timedelta(days=years * 365 + months * 30 + v["days"],
                              microseconds=v["micros"])


def same(kind, a, b):
    if a is None or b is None:
        return a is None and b is None
    if kind == "float":
        return (math.isnan(a) and math.isnan(b)) or a == b
    if kind == "decimal":
        return a.as_tuple() == b.as_tuple()
    if kind == "numeric_text":
        return decimal.Decimal(a).as_tuple() == b.as_tuple()
    if kind == "uuid":
        return uuid.UUID(bytes=a) == b
    if kind == "json":
        return json.loads(a) == b
    if kind == "interval":
        return interval_as_timedelta(a) == b
    return a == b


# (SQL type, values as SQL literals, expected Arrow type, comparison kind)
CASES = [
    ("bool", ["true", "false"], pa.bool_(), "eq"),
    ("int2", ["-32768", "32767", "0"], pa.int16(), "eq"),
    ("int4", ["-2147483648", "2147483647", "0"], pa.int32(), "eq"),
    ("int8", ["-9223372036854775808", "9223372036854775807", "1"],
     pa.int64(), "eq"),
    ("oid", ["0", "4294967295"], pa.uint32(), "eq"),
    ("float4", ["'NaN'", "'Infinity'", "'-Infinity'", "1.1", "-0.0",
                "3.4028235e38"], pa.float32(), "float"),
    ("float8", ["'NaN'", "'Infinity'", "'-Infinity'", "0.1", "1e308",
                "5e-324"], pa.float64(), "float"),
    ("numeric(10,2)", ["0", "-12345678.99", "1.5", "0.01"],
     pa.decimal128(10, 2), "decimal"),
    ("numeric(38,10)", ["9999999999999999999999999999.9999999999",
                        "-9999999999999999999999999999.9999999999", "'NaN'"][:2],
     pa.decimal128(38, 10), "decimal"),
    ("numeric", ["123456789012345678901234567890123456789012.5",
                 "'NaN'", "'Infinity'", "'-Infinity'", "0.0000001", "-1.50"],
     pa.string(), "numeric_text"),
    ("numeric(50,3)", ["12345678901234567890123456789012345678901234567.891"],
     pa.string(), "numeric_text"),
    ("text", ["''", "'plain'", "'ünïcødé ✓ 日本'", "E'tab\\tnew\\nline'"],
     pa.string(), "eq"),
    ("varchar(5)", ["''", "'abc'"], pa.string(), "eq"),
    ("name", ["'pg_class'"], pa.string(), "eq"),
    ("bytea", ["''::bytea", "'\\x00ff10'::bytea"], pa.binary(), "eq"),
    ("uuid", ["'00000000-0000-0000-0000-000000000000'",
              "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"], None, "uuid"),
    ("date", ["'1969-12-31'", "'1900-02-28'", "'2100-03-01'", "'0001-01-01'",
              "'9999-12-31'", "'2000-01-01'"], pa.date32(), "eq"),
    ("time", ["'00:00:00'", "'23:59:59.999999'", "'12:34:56.5'"],
     pa.time64("us"), "eq"),
    ("timestamp", ["'1969-12-31 23:59:59.999999'", "'1900-01-01 00:00:00'",
                   "'2200-06-30 12:00:00.000001'", "'0001-01-01 00:00:00'"],
     pa.timestamp("us"), "eq"),
    ("timestamptz", ["'2020-01-01 10:00:00+03'", "'1950-06-01 00:00:00Z'",
                     "'2150-01-01 00:00:00.123456+00'"],
     pa.timestamp("us", tz="UTC"), "eq"),
    ("interval", ["'1 year 2 mons 3 days 04:05:06.789'", "'-3 days'",
                  "'0'", "'11 mons -1 us'"], None, "interval"),
    ("json", ["'{\"a\": [1, 2, null]}'", "'\"ü\"'", "'[]'"], None, "json"),
    ("jsonb", ["'{\"a\": [1, 2, null]}'", "'\"ü\"'", "'{}'"], None, "json"),
]


@pytest.mark.parametrize("path", ["query", "copy"])
@pytest.mark.parametrize("sqltype,values,atype,kind", CASES,
                         ids=[c[0] for c in CASES])
def test_type_matches_psycopg(dsn, pg, sqltype, values, atype, kind, path):
    """Through DataRows (extended protocol) and through COPY (FORMAT binary)."""
    rows = ", ".join(f"(({v})::{sqltype})" for v in values) + f", (NULL::{sqltype})"
    sql = f"SELECT v FROM (VALUES {rows}) AS t(v)"
    extra = ("--copy",) if path == "copy" else ()
    table = arrow(dsn, sql, batch_rows=2, extra=extra)  # several batches
    assert table.num_rows == len(values) + 1
    col = table.column("v")
    if atype is not None:
        assert col.type == atype
    if sqltype == "uuid":
        assert col.type.extension_name == "arrow.uuid"
        assert storage(col).type == pa.binary(16)
    if sqltype in ("json", "jsonb"):
        assert col.type.extension_name == "arrow.json"
        assert storage(col).type == pa.string()
    if sqltype == "interval":
        assert col.type == pa.struct([("months", pa.int32()),
                                      ("days", pa.int32()),
                                      ("micros", pa.int64())])
    assert col.null_count == 1
    got = to_python(col)
    want = [r[0] for r in pg.execute(sql, binary=True).fetchall()]
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        assert same(kind, a, b), f"row {i}: arrow {a!r} != psycopg {b!r}"


def test_text_fallback_types(dsn, pg):
    """Types without a native Arrow mapping are the server's text form."""
    exprs = ["'{[1,2), [5,6)}'::int4multirange",
             "'12:00:00+05:30'::timetz", "'x'::\"char\"", "'(1,2)'::point",
             "'a b'::tsvector", "'<a/>'::xml"]
    sql = "SELECT " + ", ".join(f"{e} AS c{i}" for i, e in enumerate(exprs))
    table = arrow(dsn, sql)
    text_sql = "SELECT " + ", ".join(f"({e})::text" for e in exprs)
    want = pg.execute(text_sql).fetchone()
    for i, w in enumerate(want):
        col = table.column(i)
        assert col.type == pa.string(), exprs[i]
        assert col.to_pylist() == [w], exprs[i]


def same_range(a, r):
    """An Arrow range struct against a psycopg Range."""
    if r is None:
        return a is None
    if a["empty"] != r.isempty:
        return False
    if r.isempty:
        return a["lower"] is None and a["upper"] is None
    for bound, value, inc in (("lower", r.lower, r.lower_inc),
                              ("upper", r.upper, r.upper_inc)):
        got = a[bound]
        if value is None:
            if got is not None:
                return False
        elif got is None or got["inclusive"] != inc:
            return False
        else:
            v = got["value"]
            if isinstance(value, decimal.Decimal) and isinstance(v, str):
                v = decimal.Decimal(v)  # numrange: numeric without typmod is text
            if v != value:
                return False
    return True


@pytest.mark.parametrize("path", ["query", "copy"])
def test_arrays_and_ranges_match_psycopg(dsn, pg, path):
    exprs = ["ARRAY[1,NULL,3]::int4[]", "'{}'::text[]", "'[2:3]={7,8}'::int4[]",
             "ARRAY['a', 'ü', '', NULL]::text[]", "ARRAY[1.5, NULL]::numeric(5,2)[]",
             "ARRAY['2020-01-01'::date]", "NULL::int8[]",
             "int4range(1, 5)", "numrange(NULL, 2.5, '(]')", "'empty'::int8range",
             "NULL::int4range", "tstzrange('2020-01-01Z', NULL, '[]')",
             "tstzrange('2020-01-01 10:00+02', '2030-01-01Z', '[]')",
             "daterange('1969-01-01', '2101-01-01')"]
    sql = "SELECT " + ", ".join(f"{e} AS c{i}" for i, e in enumerate(exprs))
    table = arrow(dsn, sql, extra=("--copy",) if path == "copy" else ())
    want = pg.execute(sql, binary=True).fetchone()
    got = table.to_pylist()[0]
    arr_t = table.schema.field("c0").type
    assert arr_t == pa.struct([("lower_bounds", pa.list_(pa.int32())),
                               ("values", pa.list_(pa.int32()))])
    assert table.schema.field("c4").type.field("values").type.value_type == \
        pa.decimal128(5, 2)
    for i, e in enumerate(exprs):
        a, w = got[f"c{i}"], want[i]
        if "range" in e:
            assert same_range(a, w), f"{e}: {a!r} vs {w!r}"
            continue
        if w is None:
            assert a is None, e
            continue
        assert a["values"] == list(w), e
        want_lb = [] if not w else [2 if "[2:3]" in e else 1]
        assert a["lower_bounds"] == want_lb, e


def test_copy_path_rejects_types_without_binary_decoder(dsn):
    p = dump(dsn, "SELECT '(1,2)'::point AS pt", extra=("--copy",))
    assert p.returncode == 1
    assert b"\"pt\"" in p.stderr and b"cast it to text" in p.stderr
    table = arrow(dsn, "SELECT '(1,2)'::point::text AS pt", extra=("--copy",))
    assert table.column("pt").to_pylist() == ["(1,2)"]


def test_copy_path_large_and_errors(dsn):
    sql = "SELECT g::int8 AS g, repeat('é', g % 50) AS s FROM generate_series(1, 100000) g"
    table = arrow(dsn, sql, batch_rows=4096, extra=("--copy",))
    assert table.num_rows == 100000
    assert table.column("g").to_pylist()[-3:] == [99998, 99999, 100000]
    assert table.column("s")[12345].as_py() == "é" * (12346 % 50)  # g = index + 1
    p = dump(dsn, "SELECT 1/(g-3) FROM generate_series(1,5) g", extra=("--copy",))
    assert p.returncode == 1 and b"22012" in p.stderr
    p = dump(dsn, "SELEC 1", extra=("--copy",))
    assert p.returncode == 1 and b"42601" in p.stderr


@pytest.mark.parametrize("path", ["query", "copy"])
def test_multidimensional_arrays(dsn, pg, path):
    """One List level per dimension, fixed by the first batch's arrays."""
    sql = ("SELECT CASE WHEN g % 3 = 0 THEN NULL WHEN g % 5 = 0 THEN '{}'::int4[] "
           "ELSE ARRAY[[g, NULL, 3], [4, 5, g]] END AS m, "
           "ARRAY[[['a', 'b']], [['c', NULL]]]::text[] AS t3 "
           "FROM generate_series(1, 20) g")
    table = arrow(dsn, sql, batch_rows=4, extra=("--copy",) if path == "copy" else ())
    m = table.schema.field("m").type.field("values").type
    assert m == pa.list_(pa.list_(pa.int32()))
    t3 = table.schema.field("t3").type.field("values").type
    assert t3 == pa.list_(pa.list_(pa.list_(pa.string())))
    want = pg.execute(sql, binary=True).fetchall()
    for got, (wm, wt) in zip(table.to_pylist(), want):
        if wm is None:
            assert got["m"] is None
        else:
            assert got["m"]["values"] == wm
            assert got["m"]["lower_bounds"] == ([1, 1] if wm else [])
        assert got["t3"]["values"] == wt
        assert got["t3"]["lower_bounds"] == [1, 1, 1]


def test_array_dimension_change_fails_clearly(dsn):
    # fixed at 1 by the first batch, then a 2-D array comes
    p = dump(dsn, "SELECT CASE WHEN g < 5 THEN ARRAY[g] ELSE ARRAY[[g]] END AS m "
                  "FROM generate_series(1, 10) g", batch_rows=2)
    assert p.returncode == 1
    assert b"\"m\"" in p.stderr and b"2 dimensions" in p.stderr
    # only NULL and empty arrays in the first batch: one level
    table = arrow(dsn, "SELECT CASE WHEN g = 1 THEN NULL ELSE '{}'::int8[] END AS e "
                       "FROM generate_series(1, 3) g")
    assert table.schema.field("e").type.field("values").type == pa.list_(pa.int64())
    assert table.column("e").to_pylist() == [None, {"lower_bounds": [], "values": []},
                                             {"lower_bounds": [], "values": []}]


def test_infinities_pass_through(dsn):
    table = arrow(dsn, "SELECT 'infinity'::date AS d, '-infinity'::date AS nd, "
                       "'infinity'::timestamp AS t, '-infinity'::timestamptz AS nt")
    assert table.column("d").cast(pa.int32()).to_pylist() == [2**31 - 1]
    assert table.column("nd").cast(pa.int32()).to_pylist() == [-2**31]
    assert table.column("t").cast(pa.int64()).to_pylist() == [2**63 - 1]
    assert table.column("nt").cast(pa.int64()).to_pylist() == [-2**63]


def test_names_empty_result_and_batches(dsn):
    table = arrow(dsn, "SELECT 1::int4 AS \"ünï\", 'x'::text AS \"a b\" WHERE false")
    assert table.num_rows == 0
    assert table.schema.names == ["ünï", "a b"]
    table = arrow(dsn, "SELECT g::int4 AS g, repeat('x', g % 7) AS s "
                       "FROM generate_series(1, 1000) g", batch_rows=64)
    assert table.column("g").to_pylist() == list(range(1, 1001))
    assert table.column("s").to_pylist() == ["x" * (g % 7) for g in range(1, 1001)]
    p = dump(dsn, "SELECT g FROM generate_series(1, 1000) g", batch_rows=64)
    batches = list(pa.ipc.open_stream(p.stdout))
    assert [b.num_rows for b in batches] == [64] * 15 + [40]


def test_simple_protocol_is_all_text(dsn):
    p = dump(dsn, "SELECT 1::int4 AS a, NULL::date AS b", extra=("--simple",))
    assert p.returncode == 0, p.stderr.decode()
    table = pa.ipc.open_stream(p.stdout).read_all()
    table.validate(full=True)
    assert table.schema.types == [pa.string(), pa.string()]
    assert table.to_pylist() == [{"a": "1", "b": None}]


def test_one_result_set_per_stream(dsn):
    p = dump(dsn, "SELECT 1; SELECT 2", extra=("--simple",))
    assert p.returncode == 1
    assert b"more than one result set" in p.stderr


def test_errors_exit_nonzero_without_eos(dsn):
    p = dump(dsn, "SELECT 10/(g-3) FROM generate_series(1,5) g", batch_rows=1)
    assert p.returncode == 1
    assert b"22012" in p.stderr  # division_by_zero
    assert not p.stdout.endswith(b"\xff\xff\xff\xff\x00\x00\x00\x00")
    # the batches before the error are there and readable
    assert pa.ipc.open_stream(p.stdout).read_all().column(0).to_pylist() == [-5, -10]
    p = dump(dsn, "SELECT 'NaN'::numeric(5,2) AS x")
    assert p.returncode == 1
    assert b"\"x\"" in p.stderr and b"Decimal128" in p.stderr


def test_four_million_rows_in_bounded_memory(dsn):
    """4M rows streamed as batches: the dump's peak RSS stays under 64 MiB
    (the Arrow stream is over 128 MiB, the server's text for it more)."""
    sql = ("SELECT g::int8 AS id, (g % 1000)::int4 AS k, 'row ' || g AS s, "
           "g * 0.5::float8 AS f FROM generate_series(1, 4000000) g")
    # --stats reports VmHWM: ru_maxrss of a child spawned from this (large)
    # Python process would include the parent's peak from before exec.
    proc = subprocess.Popen([str(DUMP), "--dsn", dsn, "--sql", sql, "--stats"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rows = 0
    last = None
    with pa.ipc.open_stream(proc.stdout) as reader:
        for batch in reader:
            rows += batch.num_rows
            last = batch
    err = proc.stderr.read().decode()
    assert proc.wait() == 0, err
    assert rows == 4_000_000
    assert last.column(0)[-1].as_py() == 4_000_000
    stats = dict(kv.split("=") for kv in err.split())
    assert int(stats["rows"]) == rows
    peak_mib = int(stats["peak_rss_kib"]) / 1024
    print(f"molt_arrow_dump peak RSS for 4M rows: {peak_mib:.1f} MiB")
    assert 0 < peak_mib < 64, f"peak RSS {peak_mib:.1f} MiB"
