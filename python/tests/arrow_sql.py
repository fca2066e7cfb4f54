"""SQL of the Arrow tests (test_inprocess_arrow.py, test_arrow_c_stream.py,
tests/fuzz/gen_arrow_ipc_corpus.py)."""

import sqlite3

# every row of the type table of docs/arrow.md, and a row of NULLs
TYPES_SQL = """
SELECT t.*, d.dec FROM (VALUES
  (true, 1::int2, 2::int4, 3::int8, 4::oid, 1.5::float4, 'NaN'::float8, 12.34::numeric(10,2),
   '123456789012345678901234567890.5'::numeric, 'text'::text, 'vc'::varchar(5), 'bp'::bpchar(4),
   'nm'::name, '\\x00ff'::bytea, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '2024-02-29'::date,
   '12:34:56.789'::time, '2024-01-01 10:00:00.5'::timestamp, '2024-01-01 10:00:00+02'::timestamptz,
   '1 year 2 days 3 seconds'::interval, '{"a": 1}'::json, '{"b": [1, 2]}'::jsonb,
   '{1,2,NULL}'::int4[], '{{1,2},{3,4}}'::int8[], '{"x","y"}'::text[], '[1,5)'::int4range,
   'empty'::int4range, '12:00:00+01'::timetz, 'c'::"char", 'infinity'::float8),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) AS t(b, i2, i4, i8, o, f4, f8, n, nu, tx, vc, bp, nm, by, u, d, tm, ts, tstz, iv, js, jb,
       a1, a2, at, r, re, ttz, ch, finf)
CROSS JOIN (SELECT 12.34::numeric(10,2) AS dec) d
"""


def sqlite_types_db(path):
    """A SQLite file at path whose table t holds each storage class, NULLs
    and the extremes (SELECT i, r, s, b, n FROM t ORDER BY rowid)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (i integer, r real, s text, b blob, n numeric)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                   [(1, 1.5, "a", b"\x00\x01", 10), (None, None, None, None, None),
                    (-(2 ** 63), float("inf"), "é" * 100, b"", 2.5)])
    db.commit()
    db.close()
    return path
