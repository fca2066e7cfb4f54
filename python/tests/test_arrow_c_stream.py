"""The Arrow C Data hand-off (docs/python.md, "Arrow C Data hand-off"): an
arrow_ipc result's ``__arrow_c_stream__`` (and a stream's) is the IPC bytes
read in C by ``_rows.arrow_stream``, its arrays pointing into those bytes.
On both transports, every type the encoders emit gives the Table pyarrow's
own IPC reader gives on the same bytes; bad bytes raise; nothing is held
once the consumer lets go. Real PostgreSQL (the harness) and SQLite files."""
import gc
import os
import random
import subprocess
import sys

import pytest
from arrow_sql import TYPES_SQL, sqlite_types_db
from worker_client import NEEDS_PG_WORKER, WORKER_BIN, pg_client_cmd

from molt_db_adapter import MoltClient, c_rows
from molt_db_adapter.errors import ProtocolError
from molt_db_adapter.results import QueryResult, arrow_table_from_chunks, arrow_table_from_ipc

pa = pytest.importorskip("pyarrow")
_rows = pytest.importorskip("molt_db_adapter._rows", reason="molt_db_adapter._rows is not built")

pytestmark = [*NEEDS_PG_WORKER, pytest.mark.usefixtures("transport")]  # worker and in process

BIG = "SELECT g, md5(g::text) AS h, g * 0.5 AS f FROM generate_series(1, 20000) g"


def ipc_bytes(t):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    return sink.getvalue().to_pybytes()


def live():
    """arrow_stream results whose bytes are still held."""
    gc.collect()
    return _rows.arrow_stats()["live"]


def assert_same(got, want):
    """Schema with its metadata, Table.equals over the columns without NaN
    (NaN != NaN there), and all of it bit for bit."""
    assert got.schema.equals(want.schema, check_metadata=True)
    keep = [i for i, col in enumerate(want.columns) if col.equals(col)]
    assert got.select(keep).equals(want.select(keep))
    assert ipc_bytes(got) == ipc_bytes(want)


def assert_inside(t, raw):
    """Every buffer of t lies in raw's memory: nothing was copied."""
    start = pa.py_buffer(raw).address
    for col in t.columns:
        for chunk in col.chunks:
            for buf in chunk.buffers():
                if buf is not None and buf.size:
                    assert start <= buf.address and buf.address + buf.size <= start + len(raw)


def check_query(c, sql, **kw):
    """sql's result through the capsule (pa.table, RecordBatchReader)
    against pyarrow's IPC reader on the same bytes; the Table."""
    copies = _rows.arrow_stats()["aligned_copies"]
    r = c.query(sql, result_format="arrow_ipc", **kw)
    want = arrow_table_from_ipc(r.raw)
    got = pa.table(r)
    assert_same(got, want)
    assert_inside(got, r.raw)
    assert_same(pa.RecordBatchReader.from_stream(r).read_all(), want)
    assert _rows.arrow_stats()["aligned_copies"] == copies  # the frames place the bytes aligned
    return got


def check_stream(c, sql, batch_rows, **kw):
    """The same for a stream of batch_rows-row batches; the Table."""
    copies = _rows.arrow_stats()["aligned_copies"]
    with c.stream(sql, result_format="arrow_ipc", batch_rows=batch_rows, **kw) as s:
        want = arrow_table_from_chunks(list(s.chunks()))
    with c.stream(sql, result_format="arrow_ipc", batch_rows=batch_rows, **kw) as s:
        got = pa.table(s)
    assert_same(got, want)
    assert _rows.arrow_stats()["aligned_copies"] == copies
    return got


def test_every_postgres_type():
    with MoltClient(pg_client_cmd()) as c:
        t = check_query(c, TYPES_SQL)
        assert t.num_rows == 2 and t.num_columns == 31
        s = check_stream(c, TYPES_SQL, 1)
        assert s.column("i8").num_chunks == 2
        assert s.drop_columns(["f8"]).to_pylist() == t.drop_columns(["f8"]).to_pylist()


def test_every_sqlite_type(tmp_path):
    path = sqlite_types_db(tmp_path / "types.db")
    with MoltClient([WORKER_BIN, "--stdio", "--db", f"default=sqlite:///{path}"]) as c:
        t = check_query(c, "SELECT i, r, s, b, n FROM t ORDER BY rowid")
        assert t.column("b").to_pylist() == [b"\x00\x01", None, b""]
        check_stream(c, "SELECT i, r, s, b, n FROM t ORDER BY rowid", 2)


def test_empty_results_and_several_batches():
    with MoltClient(pg_client_cmd()) as c:
        empty = "SELECT 1::int4 AS a, 'x'::text AS b, ARRAY[1.5::numeric(4,1)] AS c WHERE false"
        assert check_query(c, empty).num_rows == 0
        assert check_stream(c, empty, 10).num_rows == 0
        t = check_stream(c, BIG, 5000)
        assert t.column("h").num_chunks == 4 and t.column("g").to_pylist()[-1] == 20000
        assert check_query(c, BIG).equals(t)


def test_bad_bytes_raise():
    with MoltClient(pg_client_cmd()) as c:
        raw = bytes(c.query(TYPES_SQL, result_format="arrow_ipc").raw)

    def read(b):
        return pa.table(QueryResult("arrow_ipc", b, {}, 1))

    # every cut, including at each message's end (the end-of-stream mark is missing)
    for n in range(len(raw)):
        with pytest.raises(ProtocolError):
            read(raw[:n])
    with pytest.raises(ProtocolError, match="after the end-of-stream mark"):
        read(raw + raw[-8:])
    # mutated bytes: refused, or a stream whose every buffer reads back
    rnd = random.Random(16)
    refused = 0
    for _ in range(3000):
        b = bytearray(raw)
        for _ in range(rnd.randint(1, 3)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        try:
            t = read(bytes(b))
        except ProtocolError:
            refused += 1
            continue
        except pa.ArrowInvalid:
            continue  # pyarrow's own checks on import (a value of the type's range)
        ipc_bytes(t)
    assert refused > 100


def pyarrow_stream(t, **options):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema, options=pa.ipc.IpcWriteOptions(**options)) as w:
        w.write_table(t)
    return sink.getvalue().to_pybytes()


def test_types_and_features_not_read_are_named():
    cases = [
        (pa.table({"d": pa.array(["a", "b", "a"]).dictionary_encode()}), {}, "dictionary"),
        (pa.table({"l": pa.array(["a"], pa.large_string())}), {}, "LargeUtf8"),
        (pa.table({"m": pa.array([{"a": 1}], pa.map_(pa.string(), pa.int32()))}), {}, "Map"),
    ]
    if pa.Codec.is_available("zstd"):
        cases.append((pa.table({"i": [1, 2]}), {"compression": "zstd"}, "compressed"))
    for t, options, word in cases:
        with pytest.raises(ProtocolError, match=word):
            pa.table(QueryResult("arrow_ipc", pyarrow_stream(t, **options), {}, 1))
    # what pyarrow writes of the types read is read the same
    t = pa.table({"i": pa.array([1, None], pa.int16()), "ts": pa.array([1, 2], pa.timestamp("ns")),
                  "t": pa.array([1, None], pa.time32("s")), "f": pa.array([1.5, 2], pa.float16()),
                  "w": pa.array([b"ab", None], pa.binary(2)), "d": pa.array([1, 2], pa.date64())})
    assert_same(pa.table(QueryResult("arrow_ipc", pyarrow_stream(t), {}, 1)), t)


def test_nothing_is_held_once_the_consumer_lets_go():
    base = live()
    with MoltClient(pg_client_cmd()) as c:
        r = c.query(BIG, result_format="arrow_ipc")
        for _ in range(20):  # capsules dropped unconsumed
            r.__arrow_c_stream__()
        assert live() == base
        with c.stream(BIG, result_format="arrow_ipc", batch_rows=5000) as s:
            reader = pa.RecordBatchReader.from_stream(s)
            batch = reader.read_next_batch()  # one of four batches read
        del reader
        assert live() == base + 1  # the batch holds the payloads
        assert batch.column(0).to_pylist()[-1] == 5000
        del batch
        assert live() == base
        t = pa.table(r)
    del r
    assert live() == base + 1  # the Table outlives its result and the client
    assert t.column("g").to_pylist()[-1] == 20000 and t.column("h")[0].as_py() == "c4ca4238a0b923820dcc509a6f75849b"
    del t
    assert live() == base


def test_a_misaligned_chunk_is_copied_once():
    with MoltClient(pg_client_cmd()) as c:
        raw = bytes(c.query(BIG, result_format="arrow_ipc").raw)
    room = bytearray(len(raw) + 8)
    start = next(i for i in range(1, 8) if (pa.py_buffer(room).address + i) % 8)
    room[start:start + len(raw)] = raw
    shifted = memoryview(room)[start:start + len(raw)]
    copies = _rows.arrow_stats()["aligned_copies"]
    t = pa.table(QueryResult("arrow_ipc", shifted, {}, 1))
    assert _rows.arrow_stats()["aligned_copies"] == copies + 1
    assert_same(t, arrow_table_from_ipc(raw))
    for chunk in t.column("h").chunks:
        assert all(b.address % 8 == 0 for b in chunk.buffers() if b is not None)


def test_a_writable_chunk_is_read_from_a_copy():
    """What was checked must not change under the arrays: a bytearray is
    copied (writing it afterwards changes nothing read)."""
    with MoltClient(pg_client_cmd()) as c:
        raw = bytes(c.query(BIG, result_format="arrow_ipc").raw)
    room = bytearray(raw)
    copies = _rows.arrow_stats()["aligned_copies"]
    t = pa.table(QueryResult("arrow_ipc", room, {}, 1))
    assert _rows.arrow_stats()["aligned_copies"] == copies + 1
    room[:] = bytes(len(room))
    assert_same(t, arrow_table_from_ipc(raw))


def test_more_fields_than_columns():
    """A struct column is several Arrow fields: 1,400 interval columns are
    5,600 fields, read like any result."""
    sql = "SELECT " + ", ".join(f"'{k} day'::interval AS i{k}" for k in range(1400))
    with MoltClient(pg_client_cmd()) as c:
        r = c.query(sql, result_format="arrow_ipc")
        t = pa.table(r)
        assert t.num_columns == 1400 and t.column("i7").to_pylist()[0]["days"] == 7
        assert_same(t, arrow_table_from_ipc(r.raw))


def test_the_capsule_needs_no_pyarrow(tmp_path):
    with MoltClient(pg_client_cmd()) as c:
        (tmp_path / "r.arrows").write_bytes(bytes(c.query(TYPES_SQL, result_format="arrow_ipc").raw))
    code = ("import sys; sys.modules['pyarrow'] = None\n"
            "from molt_db_adapter.results import QueryResult\n"
            f"r = QueryResult('arrow_ipc', open({str(tmp_path / 'r.arrows')!r}, 'rb').read(), {{}}, 1)\n"
            "print(type(r.__arrow_c_stream__()).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "PyCapsule", out.stderr


def test_without_the_extension_the_table_serves(monkeypatch):
    monkeypatch.setattr(c_rows, "decoder", None)
    with MoltClient(pg_client_cmd()) as c:
        r = c.query(BIG, result_format="arrow_ipc")
        assert_same(pa.table(r), arrow_table_from_ipc(r.raw))
