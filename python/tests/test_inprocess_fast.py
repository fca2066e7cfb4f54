"""The blocking in-process client's fast path (host_call.c,
host_params.c, docs/python.md "The fast path"): the envelope and a plain
call's payload packed in C are the Python path's bytes, and what C leaves
goes the Python way with its errors; a call on it gives what the general
path gives (every type of the type table, errors, large and oversized
results); an interrupt, a client timeout and a lost or closed host leave
it the general path's way (the server's query ends); threads share a
client through it; 10^5 calls keep no reference and leave RSS flat."""
import datetime
import os
import signal
import sys
import threading
import time
import uuid
from decimal import Decimal

import msgpack
import pytest

from molt_db_adapter import DbError, InProcessClient, ProtocolError, Timeout, WorkerUnavailable
from molt_db_adapter.envelope import encode_envelope, exec_payload, packb, query_payload
from molt_db_adapter.params import Typed
from molt_db_adapter.placeholders import scan_placeholders
from test_inprocess import _rss_kib, ctrl_c, pg_args, running, sqlite_args  # noqa: F401 (a fixture)

_host = pytest.importorskip("molt_db_adapter._host", reason="molt_db_adapter._host is not built")

DSN = os.environ.get("MOLT_TEST_DSN")
needs_pg = pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set")


# ---- the envelope, byte for byte ----

INT_EDGES = [0, 1, 31, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1,
             -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]
LENGTHS = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000]


def _payloads():
    yield None
    yield {}
    for v in INT_EDGES:
        yield {"v": v}
    for n in LENGTHS:
        yield {"s": "x" * n, "b": b"\x00" * n, "ba": bytearray(b"y" * n)}
        yield {"a": list(range(n % 40000))}
        yield {f"k{i}": i for i in range(min(n, 70000))}
    yield {"u": "\u00e9\u4e2d\U0001f600", "f": 1.5, "g": -0.0, "h": float("inf"), "n": None,
           "t": True, "F": False, "tuple": (1, "a"), "nested": [[1, [2, [3]]], {"x": {"y": []}}]}
    yield query_payload("select $1, $2, $3, $4::jsonb, $5", [1, "two", b"3", Typed("{}", "jsonb"),
                        [[1, 2], [3, 4]]], db_alias="default", result_format="msgpack", max_rows=10,
                        tag="t.1", tx_id=7, pin_primary=True)
    yield query_payload("select :a, :b", {"a": Decimal("1.50"), "b": uuid.UUID(int=5)}, db_alias="x",
                        result_format="arrow_ipc", max_rows=None, tag=None, row_shape="arrays")
    yield exec_payload(None, None, statements=[("insert into t values ($1)", [i]) for i in range(300)],
                       db_alias="default", result_format="msgpack", tag=None, isolation="serializable")


@pytest.mark.parametrize("timeout_ms", [None, 1, 200, 70000, 2**32 - 1])
@pytest.mark.parametrize("rid", [1, 127, 128, 2**32, 2**64 - 1])
def test_the_c_envelope_is_encode_envelopes_bytes(rid, timeout_ms):
    for entry in ("db_query", "db_exec", "ping"):
        for payload in _payloads():
            assert _host.encode_envelope(rid, entry, payload, timeout_ms) == \
                encode_envelope(rid, entry, payload, timeout_ms), (entry, payload)


class _Dict(dict):
    pass


@pytest.mark.parametrize("value", [2**64, -2**63 - 1, "\ud800", _Dict(a=1), object(), memoryview(b"x")],
                         ids=["above_uint64", "below_int64", "lone_surrogate", "dict_subclass", "object",
                              "memoryview"])
def test_values_msgpack_must_pack_are_left_to_it(value):
    """None: the general path packs them with msgpack (or raises its error)."""
    assert _host.encode_envelope(1, "db_query", {"v": value}, None) is None


class _Int(int):
    pass


@pytest.mark.parametrize("timeout_ms", [True, _Int(5)], ids=["bool", "int_subclass"])
def test_a_timeout_that_is_not_an_exact_int_is_left_to_msgpack(timeout_ms):
    """msgpack packs a bool as true, not 1: such a timeout is its to pack."""
    assert _host.encode_envelope(1, "ping", None, timeout_ms) is None


def test_request_id_zero_is_refused():
    with pytest.raises(ValueError):
        _host.encode_envelope(0, "ping", None, None)


# ---- calls on the fast path give the general path's results ----

class _Taken:
    """The calls a client's C caller submitted since it was made (the fast
    path), compared with a list of booleans as the calls were counted."""

    def __init__(self, client):
        self.caller = client._conn.caller
        self.first = self.caller.submitted

    def __len__(self):
        return self.caller.submitted - self.first

    def __eq__(self, other):
        return other == [True] * len(self)

    def __bool__(self):
        return len(self) > 0

    def __iter__(self):
        return iter([True] * len(self))


def _count_fast(client):
    """Counts the calls that took the fast path (submitted by the C caller)."""
    return _Taken(client)


def _general(client):
    """The same client's calls on the general path: an after_recv hook sends
    every call that way."""
    client.after_recv = lambda info, resp: None
    return client


@needs_pg
@pytest.mark.parametrize("numeric", ["str", "decimal"])
def test_every_type_of_the_table_is_the_general_paths(numeric):
    from test_client_rows import ALL_SQL

    with InProcessClient(pg_args(), decode_numeric=numeric, decode_json=numeric == "decimal") as fast, \
            InProcessClient(pg_args(), decode_numeric=numeric, decode_json=numeric == "decimal") as slow:
        fast.ping()
        taken = _count_fast(fast)
        _general(slow)
        for sql in ALL_SQL:
            for fmt in ("msgpack", "json"):
                a, b = fast.query(sql, result_format=fmt), slow.query(sql, result_format=fmt)
                assert (a.codec, a.raw, a.columns, a.types) == (b.codec, b.raw, b.columns, b.types)
                assert repr(a.rows) == repr(b.rows) and repr(a.dicts()) == repr(b.dicts())
                assert sorted(a.metrics) == sorted(b.metrics) and a.metrics
        assert taken and all(taken)


@needs_pg
def test_exec_errors_and_admin_calls_are_the_general_paths(pg):
    table = f"fast_{os.getpid()}"
    with InProcessClient(pg_args("--allow-write", "default")) as c:
        c.ping()
        taken = _count_fast(c)
        c.execute(f"create table {table} (id int primary key, v text)")
        r = c.execute(f"insert into {table} values ($1, $2), ($3, $4) returning id, v", [1, "a", 2, "b"])
        assert (r.rows_affected, r.rows, r.columns) == (2, [(1, "a"), (2, "b")], ["id", "v"])
        assert c.executemany(f"update {table} set v = $1 where id = $2", [("x", 1), ("y", 2)]) == 2
        with pytest.raises(DbError) as e:
            c.execute(f"insert into {table} values (1, 'dup')")
        assert e.value.sqlstate == "23505" and e.value.request_id > 0
        with pytest.raises(DbError) as e:
            c.query("select 1/0")
        assert e.value.sqlstate == "22012"
        assert c.ping()["pid"] == os.getpid()
        with c.transaction() as tx:
            tx.execute(f"update {table} set v = 'tx' where id = 1")
        assert len(taken) >= 8 and all(taken)
        # what the server holds is what the calls wrote
        assert pg.execute(f"select id, v from {table} order by id").fetchall() == [(1, "tx"), (2, "y")]
        c.execute(f"drop table {table}")


@needs_pg
@pytest.mark.parametrize("fmt", ["msgpack", "arrow_ipc"])
def test_a_large_result_is_the_general_paths(fmt):
    pytest.importorskip("pyarrow")
    sql = "select g, repeat('x', 100) from generate_series(1, 5000) g"
    with InProcessClient(pg_args()) as fast, InProcessClient(pg_args()) as slow:
        a, b = fast.query(sql, result_format=fmt), _general(slow).query(sql, result_format=fmt)
        assert len(a.raw) > _host.OWNED_MIN_BYTES
        assert a.to_arrow().equals(b.to_arrow())
        assert bytes(a.raw) == bytes(b.raw)


@needs_pg
def test_a_result_above_max_response_bytes_fails_as_on_the_general_path():
    sql = "select repeat('x', 10000)"
    for client in (InProcessClient(pg_args(), max_response_bytes=4096),
                   _general(InProcessClient(pg_args(), max_response_bytes=4096))):
        with client as c:
            with pytest.raises((ProtocolError, WorkerUnavailable)) as e:
                c.query(sql)
            assert "max_response_bytes" in str(e.value)
            assert c.query("select 1").rows == [(1,)]  # a new host serves the next call


def test_sqlite_calls_take_the_fast_path(tmp_path):
    with InProcessClient(sqlite_args(tmp_path / "f.db")) as c:
        c.ping()
        taken = _count_fast(c)
        c.execute("create table t (a integer, b text)")
        c.execute("insert into t values ($1, $2)", [1, "one"])
        assert c.query("select a, b from t").rows == [(1, "one")]
        assert taken == [True, True, True]


def test_a_lost_host_takes_calls_on_a_new_host(tmp_path):
    """The host closed under the client (as if lost) before a call: the
    host refuses it, so it never ran, and a query or an execute alike goes
    to a new host once (an execute that may have run is never sent again:
    ConnectionLost.sent)."""
    with InProcessClient(sqlite_args(tmp_path / "lost.db")) as c:
        c.execute("create table t (a integer)")
        c._conn.host.close()
        assert c.query("select count(*) from t").rows == [(0,)]
        assert c.connects == 2
        c._conn.host.close()
        assert c.execute("insert into t values (1)").rows_affected == 1
        assert c.connects == 3
        assert c.query("select count(*) from t").rows == [(1,)]  # the row, once


# ---- interrupts, timeouts, threads ----

@needs_pg
@pytest.mark.parametrize("how", ["keyboard_interrupt", "client_timeout"])
def test_an_interrupted_fast_call_ends_the_server_query(pg, how, ctrl_c):  # noqa: F811
    marker = f"fast_cancel_{how}"
    kw = {"client_timeout_s": 0.5} if how == "client_timeout" else {}
    with InProcessClient(pg_args(), **kw) as c:
        c.ping()
        taken = _count_fast(c)
        expected = KeyboardInterrupt if how == "keyboard_interrupt" else Timeout
        if how == "keyboard_interrupt":
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        with pytest.raises(expected):
            c.query(f"select pg_sleep(30) /* {marker} */")
        assert time.monotonic() - t0 < 3
        assert taken == [True]
        assert running(pg, marker) == []  # ended on the server before the call returned
        assert c.query("select 2").rows == [(2,)]
        assert c._conn.live == {} and c._conn.pending == {}


@needs_pg
def test_two_threads_share_a_client_on_both_paths(pg):
    """Each thread gets its own answers while one drives on the fast path
    and the other waits its turn on the general one."""
    with InProcessClient(pg_args("--pool", "default:max_conns=2")) as c:
        c.ping()
        taken = _count_fast(c)
        got = {}

        def work(k):
            got[k] = [c.query("select $1::int8, pg_sleep(0.001)", [k * 1000 + i]).rows[0][0]
                      for i in range(100)]

        ts = [threading.Thread(target=work, args=(k,)) for k in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert got == {k: [k * 1000 + i for i in range(100)] for k in range(2)}
        assert any(taken)
        assert c._conn.live == {} and c._conn.pending == {}


@needs_pg
def test_a_fast_call_in_a_fork_child_uses_the_childs_host(pg):
    from test_inprocess import in_child

    with InProcessClient(pg_args()) as c:
        parent_backend = c.query("select pg_backend_pid()").rows[0][0]

        def child():
            backend = c.query("select pg_backend_pid()").rows[0][0]
            taken = _count_fast(c)
            again = c.query("select pg_backend_pid()").rows[0][0]
            c.close()
            return f"{backend} {again} {int(taken == [True])}"

        _, report = in_child(child)
        backend, again, fast = (int(x) for x in report.split())
        assert backend == again != parent_backend and fast == 1
        assert c.query("select pg_backend_pid()").rows[0][0] == parent_backend


# ---- query(sql, params) and execute(sql, params) with every option at its default ----

PLAIN_PARAMS = [None, [], [1, "two", b"3", None, 1.5, Decimal("2.50"), uuid.UUID(int=5), [[1, 2], [3, 4]]],
                [Typed("{}", "jsonb")], (7,), {"a": 1, "b": "x"}]


def _general_call(c, write, sql, params):
    """The Call the general path builds: decode_json given (as the client's
    own) takes it, with the same result."""
    if write:
        return c._exec_call(sql, params, statements=None, isolation=None, db_alias=None, result_format="msgpack",
                            timeout_ms=None, tag=None, idempotent=False, decode_json=c.decoding.json)
    return c._query_call(sql, params, db_alias=None, result_format="msgpack", max_rows=None, timeout_ms=None,
                         tag=None, row_shape=None, idempotent=True, decode_json=c.decoding.json)


@pytest.mark.parametrize("timeout_ms", [None, 5000])
@pytest.mark.parametrize("write", [False, True])
def test_a_plain_call_is_the_general_paths_call_and_bytes(tmp_path, write, timeout_ms):
    c = InProcessClient(sqlite_args(tmp_path / "p.db"), timeout_ms=timeout_ms, db_alias="other",
                        decode_numeric="decimal")
    for params in PLAIN_PARAMS:
        sql = "select :a, :b" if isinstance(params, dict) else \
            "select " + ", ".join(f"${i + 1}" for i in range(len(params or []))) if params else "select 1"
        plain = c._plain_call(write, sql, params)
        c._plain_call = None   # the general call must not take it
        general = _general_call(c, write, sql, params)
        del c._plain_call
        assert plain == general
        assert encode_envelope(9, plain.entry, plain.payload, plain.timeout_ms) == \
            encode_envelope(9, general.entry, general.payload, general.timeout_ms)
        assert _host.encode_envelope(9, plain.entry, plain.payload, plain.timeout_ms) == \
            encode_envelope(9, general.entry, general.payload, general.timeout_ms)


class _Str(str):
    pass


# ---- the plain call's payload packed in C (Caller.plain), byte for byte ----

def _nested(depth, leaf=1):
    v = leaf
    for _ in range(depth):
        v = [v]
    return v


PLAIN_VALUES = (
    [None, True, False, 1.5, -0.0, float("inf"), float("nan"), 2.0**70, "", "\u00e9\u4e2d\U0001f600",
     b"", bytearray(b"ab"), [], (), [None, 1, "a", b"b", 2.5, False], (1, (2, 3)), [[1, 2], [3, 4]],
     _nested(6), _nested(6, None), [bytearray(b"x")]]
    + [v for v in INT_EDGES if -2**63 <= v < 2**63]
    + [f(n) for n in LENGTHS for f in (lambda n: "x" * n, lambda n: b"\x01" * n, lambda n: list(range(n % 300)))]
)


class _Float(float):
    pass


#: values encode_params converts or refuses: the C packer leaves them to it
LEFT_VALUES = [2**63, -2**63 - 1, 2**64 - 1, "\ud800", Decimal("1.5"), uuid.UUID(int=1), datetime.date(2020, 1, 2),
               datetime.datetime(2020, 1, 2, 3, 4, 5), datetime.time(1, 2), Typed(1, "int8"), Typed(None, "int4"),
               memoryview(b"x"), _Str("a"), _Float(1.5), _nested(7), [Decimal("1")], [2**63], [["\ud800"]],
               {"a": 1}, object(), [_Str("a")]]


def _plain_client(tmp_path):
    """A client for _plain_call (the general path's Call): no host needed."""
    return InProcessClient(sqlite_args(tmp_path / "plain.db"))


def _placeholders(n):
    return "select " + ", ".join(f"${i + 1}" for i in range(n)) if n else "select 1"


@pytest.mark.parametrize("alias", ["default", "\u00e9" * 40])
@pytest.mark.parametrize("write", [False, True])
def test_the_c_plain_payload_is_the_general_paths_bytes(tmp_path, write, alias):
    c = _plain_client(tmp_path)
    c.db_alias = alias
    cases = [(_placeholders(1), [v]) for v in PLAIN_VALUES] + [(_placeholders(1), (v,)) for v in PLAIN_VALUES]
    cases += [(_placeholders(len(PLAIN_VALUES)), PLAIN_VALUES), ("select 1", None), ("select 1", []),
              ("select $1, $1::text", [7]), ("select '$2', $1 -- $3", ["a"]), ("\u3000select $1", [1]),
              (_placeholders(300), list(range(300)))]
    for sql, params in cases:
        general = c._plain_call(write, sql, params)
        assert _host.plain_payload(sql, params, alias, write, scan_placeholders) == packb(general.payload), \
            (sql, params)


@pytest.mark.parametrize("sql, params", [(_placeholders(1), [v]) for v in LEFT_VALUES] + [
    ("select $2", [1, 2]), ("select $1, $2", [1]), ("select :a", [1]), ("select $1", "ab"), ("select $1", {"a": 1}),
    ("select $1", None), ("select 1", [1]), ("  ", None), ("\u3000\n", None), (_Str("select 1"), None),
    (b"select 1", None), (None, None), ("select $1", iter([1])), ("select :a", {"a": 1}),
], ids=repr)
def test_what_the_c_packer_leaves_goes_the_python_way(sql, params):
    """None: the Python path builds the call (Decimal, UUID, dates, Typed,
    named params) or raises its error (a value out of range, a
    placeholder without a value, blank sql)."""
    for alias in ("default", "", None, _Str("default")):
        assert _host.plain_payload(sql, params, alias, False, scan_placeholders) is None
    assert _host.plain_payload(sql, params, "", True, scan_placeholders) is None


@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize("sql, params, alias", [
    ("select $1", [_nested(7)], "default"), ("select $1", [[2**63]], "default"), ("select $1, $2", [1], "default"),
    ("select $2", [1, 2], "default"), ("select $1", ["\ud800"], "default"), ("\u3000", None, "default"),
    ("select $1", object(), "default"), ("select $1", [object()], "default"), ("select $1", {"a": 1}, "default"),
    ("select :a", [1], "default"), ("select $1", "abc", "default"), ("select $1", [2**64], "default"),
    ("", None, "default"), ("  ", None, "default"), (None, None, "default"), (b"select 1", None, "default"),
    ("select 1", None, ""), ("select 1", None, None), (_Str("select $1"), [object()], "default"),
])
def test_bad_input_raises_the_general_paths_error(tmp_path, write, sql, params, alias):
    """What the plain way refuses, or leaves to the general path, raises
    the same exception as the general path, before anything is sent."""
    with InProcessClient(sqlite_args(tmp_path / "e.db")) as c:
        c.db_alias = alias
        c._plain_call = None   # the general call must not take it
        with pytest.raises(Exception) as general:
            _general_call(c, write, sql, params)
        del c._plain_call
        with pytest.raises(Exception) as plain:
            c.execute(sql, params) if write else c.query(sql, params)
        assert (type(plain.value), str(plain.value)) == (type(general.value), str(general.value))


def test_plain_calls_give_the_general_paths_results(tmp_path):
    with InProcessClient(sqlite_args(tmp_path / "r.db")) as c:
        c.execute("create table t (a integer, b text)")  # the first call makes the host
        built = []
        real = c._plain_call
        c._plain_call = lambda *a: built.append(a[0]) or real(*a)
        taken = _count_fast(c)
        assert c.execute("insert into t values ($1, $2)", [1, "one"]).rows_affected == 1
        assert c.execute("insert into t values ($1, $2)", [2, "two"], tag="t").rows_affected == 1
        plain = c.query("select a, b from t where a >= $1 order by a", [1])
        general = c.query("select a, b from t where a >= $1 order by a", [1], tag="t")
        assert plain.rows == general.rows == [(1, "one"), (2, "two")]
        assert (plain.request_id, plain.codec, plain.decoding) == \
            (general.request_id - 1, general.codec, general.decoding)
        assert built == []  # the plain calls were made in C (Caller.plain), without a Call
        assert taken == [True] * 4


def test_the_frame_reader_leaves_any_odd_final_frame_to_the_general_path():
    """ok_parts (both fast paths' reader): an Ok final frame it cannot read
    as its own (a negative or out-of-range request_id, an unhashable
    metrics key, trailing bytes) is None, never an exception."""
    ok = {"request_id": 7, "status": "Ok", "codec": "msgpack", "payload": b"x", "metrics": {"a": 1}}
    assert _host.ok_frame(msgpack.packb(ok), 7) == ("msgpack", b"x", {"a": 1})
    assert _host.ok_frame(msgpack.packb(ok), 8) is None
    for rid in (-1, -(2 ** 63)):
        frame = msgpack.packb({**ok, "request_id": rid})
        assert _host.ok_frame(frame, 7) is None
        assert _host.ok_frame(frame, 2 ** 64 - 1) is None
    head = b"\x85" + b"".join(msgpack.packb(v) for v in
                              ("request_id", 7, "status", "Ok", "codec", "msgpack", "payload", b"x"))
    unhashable_key = head + msgpack.packb("metrics") + b"\x81" + msgpack.packb([1]) + msgpack.packb(1)
    assert _host.ok_frame(unhashable_key, 7) is None
    assert _host.ok_frame(msgpack.packb(ok) + b"\xc0", 7) is None
    for cut in range(len(msgpack.packb(ok))):
        assert _host.ok_frame(msgpack.packb(ok)[:cut], 7) is None


# ---- leaks: the C caller's references and memory ----

def test_plain_calls_keep_no_reference_and_leave_rss_flat(tmp_path):
    """5 * 10^4 plain calls (queries, writes, errors, the general path's
    hand-overs): every object given to a call has the references it had
    before, and RSS stays within 2 MiB over the second half (84 bytes a
    call; measured 0-4 KiB for halves of 10^4 to 5 * 10^4)."""
    with InProcessClient(sqlite_args(tmp_path / "leak.db")) as c:
        c.execute("create table t (a integer, b text)")
        sql, text, blob = "select $1, $2, $3", "x" * 100, b"y" * 100
        params = [1 << 40, text, blob]
        c.db_alias = "".join(["def", "ault"])  # a str of its own: "default" is shared (interned)
        watched = (sql, text, blob, params, c.decoding, c.db_alias, c)
        c.query(sql, params)  # the placeholder scan's cache keeps sql from here on
        before = [sys.getrefcount(o) for o in watched]
        taken = _count_fast(c)

        def round_(n):
            for i in range(n):
                assert c.query(sql, params).rows == [(1 << 40, text, blob)]
                if i % 100 == 0:
                    assert c.execute("insert into t values ($1, $2)", [i, text]).rows_affected == 1
                if i % 1000 == 0:
                    with pytest.raises(DbError):
                        c.query("select nope from t where a = $1", params[:1])

        round_(25_000)
        rss = _rss_kib()
        round_(25_000)
        grown = _rss_kib() - rss
        assert [sys.getrefcount(o) for o in watched] == before
        assert len(taken) >= 50_000
        assert c.query("select count(*) from t").rows == [(500,)]
    assert grown < 2 * 1024, grown


@needs_pg
def test_a_host_closed_under_a_plain_call_resends_a_query_and_fails_an_execute(pg):
    """Another thread closes the host while a plain call waits in C: the
    query is resent on a new host, the execute is not (it may have run)."""
    with InProcessClient(pg_args("--allow-write", "default")) as c:
        c.ping()
        threading.Timer(0.3, c._conn.host.close).start()
        assert c.query("select 5 from pg_sleep(0.6)").rows == [(5,)]
        assert c.connects == 2
        threading.Timer(0.3, c._conn.host.close).start()
        with pytest.raises(WorkerUnavailable, match="not resent"):
            c.execute("select pg_sleep(0.6)")
        assert c.query("select 6").rows == [(6,)]


def _metrics_frame(pairs):
    """An Ok final frame for request 3 whose metrics map holds pairs."""
    body = b"".join(msgpack.packb(k) + msgpack.packb(v) for k, v in pairs)
    head = bytes([0x80 | len(pairs)]) if len(pairs) < 16 else b"\xde" + len(pairs).to_bytes(2, "big")
    ok = {"request_id": 3, "status": "Ok", "codec": "msgpack", "payload": b""}
    return b"\x85" + b"".join(msgpack.packb(k) + msgpack.packb(v) for k, v in ok.items()) + \
        msgpack.packb("metrics") + head + body


def test_the_frame_readers_metrics_are_msgpacks_dicts_in_order():
    """ok_parts builds the metrics with the short strings it made before:
    any sequence of maps (the same keys, reordered, fewer, more, repeated
    keys, other kinds) gives msgpack's dict, order included."""
    base = [("queue_us", 1), ("exec_us", 2), ("db_alias", "default"), ("db_row_count", 3)]
    for pairs in (base, base, [(k, i) for i, (k, _) in enumerate(base)], base[::-1], base[:3], base + [("x", None)],
                  base + [("queue_us", 9)], base + [("queue_us", 9)], [("queue_us", 1)] * 3, [],
                  [(1, "int key"), ("k" * 40, [1, {"a": 2}]), ("\u00e9", 1.5)], base,
                  [(f"k{i}", i) for i in range(16)], [(f"k{i}", i) for i in range(17)], base):
        raw = _metrics_frame(pairs)
        got = _host.ok_frame(raw, 3)
        want = msgpack.unpackb(raw, raw=False, strict_map_key=False)["metrics"]
        assert got is not None and list(got[2].items()) == list(want.items()), pairs


# ---- the result as a plain query gives it: rows decoded with the call, metrics on demand ----

def test_lazy_metrics_are_msgpacks_dict_or_made_at_once():
    """A query's metrics kept as bytes (a Metrics) only when the dict
    cannot fail to come from them (ASCII str keys, scalar values, ASCII
    strs); every other map is the dict at once, or the general path's
    (None) when it is not one; dict() gives msgpack's dict, order
    included, a new one each time."""
    base = [("queue_us", 1), ("exec_us", 2), ("db_alias", "default"), ("db_row_count", 3)]
    lazy_cases = [base, base + [("x", None), ("t", True), ("f", -1.5), ("big", 2**64 - 1), ("neg", -2**63)],
                  base + [("queue_us", 9)], [("k" * 40, "v" * 300)], [(f"k{i}", i) for i in range(17)],
                  [("", "")]]
    eager_cases = [[], [("\u00e9", 1)], [("a", "\u00e9")], [("a", [1])], [("a", {"b": 1})], [(1, "int key")],
                   [("a", b"bytes")], [("a", msgpack.Timestamp(1, 5))], [("a", None), ("\u00e9t\u00e9", 2)]]
    for pairs in lazy_cases + eager_cases:
        raw = _metrics_frame(pairs)
        got = _host.ok_frame(raw, 3, True)
        want = msgpack.unpackb(raw, raw=False, strict_map_key=False, timestamp=3)["metrics"]
        assert got is not None and got[:2] == ("msgpack", b""), pairs
        metrics = got[2]
        if pairs in lazy_cases:
            assert type(metrics) is _host.Metrics, pairs
            first, second = metrics.dict(), metrics.dict()
            assert first is not second and list(first.items()) == list(second.items()) == list(want.items())
        else:
            assert type(metrics) is dict and list(metrics.items()) == list(want.items()), pairs
    unhashable = _metrics_frame([("a", 1)])[:-4] + b"\x81" + msgpack.packb([1]) + msgpack.packb(1)
    assert _host.ok_frame(unhashable, 3, True) is None
    for cut in range(len(_metrics_frame(base))):
        assert _host.ok_frame(_metrics_frame(base)[:cut], 3, True) is None
    with pytest.raises(TypeError):
        _host.Metrics()
    with pytest.raises(TypeError):
        _host.ok_frame(_metrics_frame(base), 3, True, 4)


class _OddEqStr(str):
    def __eq__(self, other):
        raise ArithmeticError("odd __eq__")

    __hash__ = str.__hash__


class _Decoding:
    """A client's decoding replaced by something that is not a Decoding."""

    def __init__(self, numeric, json):
        self.numeric, self.json = numeric, json

    def converters(self, types, codec):
        return None


class _Decoder:
    """c_rows.decoder replaced: a decode_result that raises what it is
    given, or gives it."""

    Unconvertible = ValueError

    def __init__(self, exc=None, doc=None):
        self.exc, self.doc = exc, doc

    def decode_result(self, *args, **kw):
        if self.exc is not None:
            raise self.exc
        return self.doc


class _DocDict(dict):
    def __eq__(self, other):
        raise ArithmeticError("odd __eq__")

    __hash__ = None


class _BadBool:
    def __bool__(self):
        raise ArithmeticError("odd __bool__")


def test_a_plain_querys_rows_and_metrics_outlive_the_client(tmp_path, monkeypatch):
    """The rows come decoded with the call (as the C decoder gives them on
    first read) and the metrics are read on demand, also after the client
    and its host are gone; the general path's metrics keys and values."""
    from molt_db_adapter import c_rows

    with InProcessClient(sqlite_args(tmp_path / "m.db")) as c, \
            InProcessClient(sqlite_args(tmp_path / "m.db")) as slow:
        c.ping()
        taken = _count_fast(c)
        r = c.query("select $1 as a, 'x' as b", [7])
        tagged = c.query("select 1", tag="t.1")  # Caller.call
        g = _general(slow).query("select $1 as a, 'x' as b", [7])
        assert taken == [True, True]
    assert r._decoded is not None and r._rows == [(7, "x")]  # decoded with the call
    assert r.rows == [(7, "x")] and r.columns == ["a", "b"] and r.types == g.types
    assert type(r.metrics) is dict and r.metrics is r.metrics
    assert sorted(r.metrics) == sorted(g.metrics) and r.metrics["db_alias"] == g.metrics["db_alias"]
    assert tagged.metrics["db_tag"] == "t.1" and tagged._decoded is not None
    r.metrics = {"set": 1}
    assert r.metrics == {"set": 1}

    with InProcessClient(sqlite_args(tmp_path / "m.db")) as c:
        c.ping()
        monkeypatch.setattr(c_rows, "decoder", None)  # no C decoder: the Python path, on first read
        r = c.query("select $1 as a", [8])
        assert r._decoded is None and r.rows == [(8,)]
        monkeypatch.setattr(c_rows, "decoder", _Decoder(ValueError("refused")))
        r = c.query("select $1 as a", [9])  # the payload's error comes with the first read, as before
        with pytest.raises(ValueError, match="refused"):
            r.rows
        monkeypatch.setattr(c_rows, "decoder", _Decoder(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            c.query("select $1 as a", [10])
        monkeypatch.setattr(c_rows, "decoder", _Decoder(doc=_DocDict(rows=[("sub",)])))
        r = c.query("select $1 as a", [10])  # not an exact dict: given to the first read
        assert r._decoded is None and r.rows == [("sub",)]
        monkeypatch.setattr(c_rows, "decoder", object())  # no decode_result: the first read's error
        r = c.query("select $1 as a", [10])
        with pytest.raises(AttributeError):
            r.rows
        monkeypatch.delattr(c_rows, "decoder")
        r = c.query("select $1 as a", [10])
        with pytest.raises(AttributeError):
            r.rows
        monkeypatch.undo()
        assert c.query("select $1 as a", [11]).rows == [(11,)]  # the client goes on
        c.decoding = _Decoding(_OddEqStr("decimal"), True)  # its comparison raises: on first read
        r = c.query("select $1 as a", [12])
        assert r._decoded is None
        with pytest.raises(ArithmeticError, match="odd __eq__"):
            r.rows
        c.decoding = _Decoding("str", _BadBool())
        r = c.query("select $1 as a", [13])
        with pytest.raises(ArithmeticError, match="odd __bool__"):
            r.rows
        c.decoding = _Decoding("decimal", _Int(1))  # truthy int subclass: parse_json on
        assert c.query("select $1 as a, '[1]' as j", [14]).rows == [(14, "[1]")]


def test_a_plain_querys_result_pickles_and_copies_with_its_metrics(tmp_path):
    """The metrics kept as MsgPack bytes (_host.Metrics) are made into the
    dict for pickle and copy."""
    import copy
    import pickle
    with InProcessClient(sqlite_args(tmp_path / "p.db")) as c:
        r = c.query("select $1 as x", [7])
        assert not isinstance(r._metrics, dict)  # the lazy kind: the case tested
    again = pickle.loads(pickle.dumps(r))
    assert again.rows == [(7,)] and isinstance(again.metrics, dict)
    assert again.metrics == r.metrics
    assert copy.deepcopy(r).metrics == r.metrics
