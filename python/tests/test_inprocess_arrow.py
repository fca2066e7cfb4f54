"""Arrow results in process (docs/python.md "Arrow in process"): an
arrow_ipc payload reaches pyarrow in the host's own frame, without a copy,
and gives the Table the worker gives. Real PostgreSQL (the harness) and
real SQLite files; the worker client is the reference."""
import gc
import hashlib
import os
import pathlib
import time

import pytest

from molt_db_adapter import DbError, InProcessClient, MoltClient, Timeout
from arrow_sql import TYPES_SQL, sqlite_types_db
from process_memory import asan_built, rss_kb

pa = pytest.importorskip("pyarrow")
_host = pytest.importorskip("molt_db_adapter._host", reason="molt_db_adapter._host is not built")

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKER = pathlib.Path(os.environ.get("MOLT_BUILD_DIR", ROOT / "build")) / "molt_worker"
DSN = os.environ.get("MOLT_TEST_DSN")


def pg_args(*extra):
    return ["--db", f"default={DSN}", "--pool", "default:allow_privileged_role=true", *extra]


@pytest.fixture
def need_pg():
    if not DSN:
        pytest.skip("MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)")


@pytest.fixture
def need_worker():
    if not WORKER.exists():
        pytest.skip(f"{WORKER} is not built")


def both(args):
    """The worker client and the in-process client on the same arguments."""
    return MoltClient([str(WORKER), "--stdio", *args]), InProcessClient(args)


def same_table(args, sql, **kw):
    """The Table of sql from both clients, checked equal (schema with its
    metadata, values); the in-process one is returned."""
    worker, inproc = both(args)
    with worker, inproc:
        want = worker.query(sql, result_format="arrow_ipc", **kw).to_arrow()
        got = inproc.query(sql, result_format="arrow_ipc", **kw).to_arrow()
        with worker.stream(sql, result_format="arrow_ipc", batch_rows=2, **kw) as s:
            want_streamed = s.to_arrow()
        with inproc.stream(sql, result_format="arrow_ipc", batch_rows=2, **kw) as s:
            got_streamed = s.to_arrow()
    assert got.schema.equals(want.schema, check_metadata=True)
    assert ipc_bytes(got) == ipc_bytes(want)  # bit for bit (NaN != NaN for equals)
    assert got_streamed.schema.equals(want_streamed.schema, check_metadata=True)
    assert ipc_bytes(got_streamed) == ipc_bytes(want_streamed)
    assert ipc_bytes(got_streamed.combine_chunks()) == ipc_bytes(got.combine_chunks())
    return got


def ipc_bytes(t):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    return sink.getvalue().to_pybytes()


def db_error(call):
    """(sqlstate, message) of the DbError that call() raises."""
    with pytest.raises(DbError) as e:
        call()
    return e.value.sqlstate, str(e.value)


def test_every_type_of_the_table_pg(need_pg, need_worker):
    t = same_table(pg_args(), TYPES_SQL)
    assert t.num_rows == 2 and t.num_columns == 31
    row = t.to_pylist()[0]
    assert row["i8"] == 3 and row["tx"] == "text" and row["by"] == b"\x00\xff"
    assert str(row["dec"]) == "12.34" and t.schema.field("dec").type == pa.decimal128(10, 2)
    # the arrow.uuid extension (pyarrow >= 18 makes it its uuid type)
    u = t.schema.field("u")
    assert "uuid" in str(u.type) or u.metadata == {b"ARROW:extension:name": b"arrow.uuid"}
    assert all(v is None for k, v in t.to_pylist()[1].items() if k != "dec" and not isinstance(v, dict))


def test_every_sqlite_type(need_worker, tmp_path):
    path = sqlite_types_db(tmp_path / "types.db")
    t = same_table(["--db", f"default=sqlite:///{path}"], "SELECT i, r, s, b, n FROM t ORDER BY rowid")
    assert t.column("i").to_pylist() == [1, None, -(2 ** 63)]
    assert t.column("b").to_pylist() == [b"\x00\x01", None, b""]


BIG = "SELECT g, md5(g::text) AS h, g * 0.5 AS f FROM generate_series(1, 100000) g"


def test_a_big_result_in_place_and_in_several_batches(need_pg, need_worker):
    worker, inproc = both(pg_args())
    with worker, inproc:
        want = worker.query(BIG, result_format="arrow_ipc").to_arrow()
        r = inproc.query(BIG, result_format="arrow_ipc")
        # the payload is a view into the host's frame, not a copy
        assert isinstance(r.raw, memoryview) and len(r.raw) > _host.OWNED_MIN_BYTES
        t = r.to_arrow()
        assert t.equals(want)
        # the Table's buffers are in that frame: nothing was copied
        frame = pa.py_buffer(r.raw)
        for col in t.columns:
            for buf in col.chunk(0).buffers():
                if buf is not None:
                    assert frame.address <= buf.address < frame.address + frame.size
        with inproc.stream(BIG, result_format="arrow_ipc", batch_rows=10000) as s:
            chunks = list(s.chunks())
        assert sum(isinstance(c, memoryview) for c in chunks) >= 10  # one a batch
        with inproc.stream(BIG, result_format="arrow_ipc", batch_rows=10000) as s:
            t = s.to_arrow()
    assert len(t.to_batches()) == 10
    assert t.equals(want)
    assert t.column("g").to_pylist()[-1] == 100000


def test_the_table_outlives_result_client_and_host(need_pg):
    """Arrow's buffers keep the host's frame: dropping the result, closing
    the client (the host is freed) and collecting leave the Table readable
    (ASan: pytest-asan-inprocess); dropping the Table first frees it."""
    c = InProcessClient(pg_args())
    r = c.query(BIG, result_format="arrow_ipc")
    t = r.to_arrow()
    early = c.query(BIG, result_format="arrow_ipc").to_arrow()
    del early  # the Table first, its result with it
    with c.stream(BIG, result_format="arrow_ipc", batch_rows=50000) as s:
        streamed = s.to_arrow()
    del r
    c.close()
    gc.collect()
    assert t.column("g").to_pylist()[:3] == [1, 2, 3]
    assert t.column("h")[99999].as_py() == hashlib.md5(b"100000").hexdigest()
    assert streamed.equals(t)
    # a slice outlives the Table it came from
    part = t.slice(50000, 5)
    del t, streamed
    gc.collect()
    assert part.column("g").to_pylist() == [50001, 50002, 50003, 50004, 50005]


def test_an_error_mid_stream(need_pg, need_worker):
    sql = ("SELECT g, CASE WHEN g < 50000 THEN g ELSE 1 / (g - g) END AS x "
           "FROM generate_series(1, 90000) g")
    worker, inproc = both(pg_args())
    with worker, inproc:
        errors = []
        for c in (worker, inproc):
            errors.append(db_error(lambda: c.query(sql, result_format="arrow_ipc").to_arrow()))
            got = []

            def read_stream():
                with c.stream(sql, result_format="arrow_ipc", batch_rows=10000) as s:
                    got.extend(s.chunks())
            errors.append(db_error(read_stream))
            assert len(got) >= 2  # the schema and batches came before the error
        assert errors[0] == errors[2] and errors[1] == errors[3]
        assert errors[0][0] == "22012"
        # the host goes on serving
        assert inproc.query("SELECT 7 AS x", result_format="arrow_ipc").to_arrow().to_pylist() == [{"x": 7}]


def test_a_value_its_arrow_type_cannot_hold_is_the_clients_error(need_pg, need_worker):
    """A timestamp past Timestamp(us), a NaN for a Decimal128: DbError 22000
    naming the column, on both clients, buffered and streamed (json carries
    the first as the server's text)."""
    cases = (("select '294276-12-31 23:59:59'::timestamp as t", "timestamp out of range"),
             ("select 'NaN'::numeric(10, 2) as n", "NaN or infinity cannot be a Decimal128"))
    worker, inproc = both(pg_args())
    with worker, inproc:
        for sql, why in cases:
            for c in (worker, inproc):
                def read_stream():
                    with c.stream(sql, result_format="arrow_ipc", batch_rows=1) as s:
                        s.to_arrow()
                for call in (lambda: c.query(sql, result_format="arrow_ipc").to_arrow(),
                             read_stream):
                    sqlstate, msg = db_error(call)
                    assert sqlstate == "22000" and why in msg, (sqlstate, msg)
        assert worker.query(cases[0][0]).rows == [("294276-12-31 23:59:59",)]
        assert inproc.query("SELECT 7 AS x", result_format="arrow_ipc").to_arrow().to_pylist() == [{"x": 7}]


def test_a_timeout_cancels_the_server_query(need_pg, pg):
    marker = "arrow_inproc_cancel_marker"
    sql = (f"SELECT g, md5(g::text) AS h, pg_sleep(CASE WHEN g = 30000 THEN 30 ELSE 0 END) "
           f"AS \"{marker}\" FROM generate_series(1, 40000) g")
    with InProcessClient(pg_args()) as c:
        with pytest.raises(Timeout):
            with c.stream(sql, result_format="arrow_ipc", batch_rows=5000, timeout_ms=1500) as s:
                s.to_arrow()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            left = pg.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s "
                              "AND pid <> pg_backend_pid()", (f"%{marker}%",)).fetchone()[0]
            if not left:
                break
        assert left == 0, "the query still runs on the server"
        assert c.query("SELECT 1 AS one", result_format="arrow_ipc").to_arrow().num_rows == 1


def test_max_result_bytes_refuses_as_on_the_worker(need_pg, need_worker):
    args = pg_args("--max-result-bytes", "1048576")
    worker, inproc = both(args)
    with worker, inproc:
        errors = [db_error(lambda: c.query(BIG, result_format="arrow_ipc").to_arrow())
                  for c in (worker, inproc)]
        assert errors[0] == errors[1] and errors[0][0] == "54000"
        # streamed, each batch is under the limit: the whole result comes
        with inproc.stream(BIG, result_format="arrow_ipc", batch_rows=10000) as s:
            assert s.to_arrow().num_rows == 100000


def test_msgpack_frames_taken_in_place_decode_as_before(need_pg, need_worker):
    """A large msgpack frame also comes as an owned Frame: it is decoded as
    bytes, as the worker client's."""
    sql = "SELECT g, md5(g::text) FROM generate_series(1, 20000) g"
    worker, inproc = both(pg_args())
    with worker, inproc:
        want = worker.query(sql, result_format="msgpack")
        got = inproc.query(sql, result_format="msgpack")
        assert isinstance(got.raw, bytes) and got.raw == want.raw
        assert got.rows == want.rows


def test_frames_dropped_without_pyarrow_leave_rss_flat(need_pg):
    """Results dropped before or after to_arrow(), a PyCapsule stream
    dropped without an import, and streams' chunks never imported free
    their frames: RSS stays flat over many rounds."""
    if asan_built(_host):
        pytest.skip("the extension is ASan-built: its quarantine grows RSS")
    sql = "SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g"
    with InProcessClient(pg_args()) as c:
        def round_():
            c.query(sql, result_format="arrow_ipc")  # never imported
            c.query(sql, result_format="arrow_ipc").__arrow_c_stream__()  # a capsule never imported
            t = c.query(sql, result_format="arrow_ipc").to_arrow()
            with c.stream(sql, result_format="arrow_ipc", batch_rows=10000) as s:
                chunks = list(s.chunks())
            assert t.num_rows == 50000 and len(chunks) >= 5
        for _ in range(5):
            round_()
        gc.collect()
        base = rss_kb()
        for _ in range(12):
            round_()
        gc.collect()
        grown = rss_kb() - base
    # each round moves about 6 MB through frames of about 2 MB each: one
    # leaked frame a round would be about 24 MB
    assert grown < 12000, f"RSS grew by {grown} kB over 12 rounds"


def test_the_result_is_an_arrow_stream_for_any_consumer(need_pg):
    """The PyCapsule interface: pa.table() and RecordBatchReader.from_stream
    take the result through the C stream interface, sharing its buffers."""
    with InProcessClient(pg_args()) as c:
        r = c.query(BIG, result_format="arrow_ipc")
        t = r.to_arrow()
        via_capsule = pa.table(r)
        reader = pa.RecordBatchReader.from_stream(r)
        assert via_capsule.equals(t) and reader.read_all().equals(t)
        same = via_capsule.column("h").chunk(0).buffers()[2]
        assert same.address == t.column("h").chunk(0).buffers()[2].address
        # a capsule made and dropped without an import frees what it holds
        for _ in range(50):
            r.__arrow_c_stream__()
        del r, t, reader
        gc.collect()
        assert via_capsule.column("g").to_pylist()[-1] == 100000


def test_max_response_bytes_refuses_as_on_the_worker(need_pg, need_worker):
    """The client's own limit on a response frame: the worker client's
    frame decoder refuses a larger one, and so does the in-process client;
    either way the call fails and the client serves the next one."""
    seen = []
    for c in (MoltClient([str(WORKER), "--stdio", *pg_args()], max_response_bytes=1 << 20),
              InProcessClient(pg_args(), max_response_bytes=1 << 20)):
        with c:
            with pytest.raises(Exception) as e:
                c.query(BIG, result_format="arrow_ipc")
            seen.append((type(e.value), "above the client's limit of 1048576 (max_response_bytes)" in str(e.value)))
            small = c.query("SELECT g FROM generate_series(1, 1000) g", result_format="arrow_ipc")
            assert small.to_arrow().num_rows == 1000
    assert seen[0] == seen[1] and seen[0][1], seen


def test_arrow_buffers_are_aligned_whatever_the_frame_head(need_pg):
    """Arrow consumers may need 8-byte aligned buffers; the payload's place
    in the frame shifts with the MsgPack of its head (request_id 1 byte,
    then 2 from 128, 3 from 256): buffered and streamed, every buffer is
    aligned, in place."""
    def check(t):
        for col in t.columns:
            for chunk in col.chunks:
                for buf in chunk.buffers():
                    if buf is not None:
                        assert buf.address % 8 == 0
    with InProcessClient(pg_args()) as c:
        for _ in range(2):
            for _ in range(140):
                c.query("SELECT 1", result_format="msgpack")  # the next request_ids are longer
            for n in (30001, 30002, 30003):
                r = c.query(f"SELECT g, g::text AS s FROM generate_series(1, {n}) g",
                            result_format="arrow_ipc")
                t = r.to_arrow()
                check(t)
                assert t.num_rows == n and isinstance(r.raw, memoryview)
            with c.stream(BIG, result_format="arrow_ipc", batch_rows=10000) as s:
                t = s.to_arrow()
            check(t)
            assert t.column("g").to_pylist()[-1] == 100000
