"""molt_db_adapter's client-side pieces, checked without a worker: framing,
envelopes, placeholder scanning and parameter rules (contract sections 2-5)."""

import datetime
import decimal
import struct
import uuid

import msgpack
import pytest

from molt_db_adapter import InvalidInput, ProtocolError, Typed
from molt_db_adapter.envelope import decode_response, encode_request, exec_payload, query_payload
from molt_db_adapter.framing import FrameDecoder, encode_frame
from molt_db_adapter.params import encode_params
from molt_db_adapter.placeholders import scan_placeholders


def test_frames_survive_any_split():
    bodies = [b"\x81\xa1a\x01", b"x" * 70000, b"\x80"]
    stream = b"".join(encode_frame(b) for b in bodies)
    for step in (1, 3, 4, 5, 4096, len(stream)):
        d = FrameDecoder()
        got = []
        for i in range(0, len(stream), step):
            got += d.feed(stream[i : i + step])
        assert got == bodies
        assert d.pending_bytes == 0


def test_frame_length_is_little_endian():
    assert encode_frame(b"abc")[:4] == struct.pack("<I", 3)


def test_zero_and_oversized_frames_are_protocol_errors():
    with pytest.raises(ProtocolError, match="length 0"):
        FrameDecoder().feed(b"\0\0\0\0")
    with pytest.raises(ProtocolError, match="above the client's limit of 10"):
        FrameDecoder(max_frame=10).feed(struct.pack("<I", 11))


def test_request_envelope():
    frame = encode_request(7, "db_query", {"sql": "SELECT 1", "db_alias": "default"}, timeout_ms=250)
    (n,) = struct.unpack_from("<I", frame)
    env = msgpack.unpackb(frame[4:], raw=False)
    assert n == len(frame) - 4
    assert env["request_id"] == 7 and env["entry"] == "db_query" and env["timeout_ms"] == 250
    assert env["codec"] == "msgpack"
    assert isinstance(env["payload"], bytes)  # bin, not a nested map
    assert msgpack.unpackb(env["payload"], raw=False)["sql"] == "SELECT 1"


def test_request_envelope_rejects_unknown_entry():
    with pytest.raises(InvalidInput, match="unknown entry 'db_querry'"):
        encode_request(1, "db_querry")


def test_response_decoding():
    body = msgpack.packb(
        {"request_id": 3, "status": "DbError", "error": "boom", "sqlstate": "23505",
         "error_detail": {"constraint": "u_email"}, "metrics": {"exec_us": 5}},
        use_bin_type=True,
    )
    r = decode_response(body)
    assert (r.request_id, r.status, r.sqlstate, r.error_detail["constraint"], r.metrics["exec_us"]) == (
        3, "DbError", "23505", "u_email", 5)
    with pytest.raises(ProtocolError, match="not valid MsgPack"):
        decode_response(b"\xc1")
    with pytest.raises(ProtocolError, match="where a map was expected"):
        decode_response(msgpack.packb([1, 2]))
    with pytest.raises(ProtocolError, match="without request_id or status"):
        decode_response(msgpack.packb({"status": "Ok"}))


@pytest.mark.parametrize(
    "sql,positional,named",
    [
        ("SELECT $1, $2", {1, 2}, set()),
        ("SELECT '$1', \"$2\", $3", {3}, set()),
        ("SELECT 'it''s $1', $2", {2}, set()),
        ("SELECT E'\\'$1', $2", {2}, set()),
        ("SELECT $$ $1 :x $$, $tag$ $2 $tag$, $3", {3}, set()),
        ("SELECT 1 -- $1 :x\n, $2", {2}, set()),
        ("SELECT /* $1 /* nested $2 */ :y */ $3", {3}, set()),
        ("SELECT x::int, :a, :b_2 FROM t WHERE y = :a", set(), {"a", "b_2"}),
        ("SELECT a$1 FROM t", set(), set()),
        ("SELECT ':name', \":other\"", set(), set()),
        ("SELECT $10, $2", {10, 2}, set()),
    ],
)
def test_placeholder_scanning(sql, positional, named):
    found = scan_placeholders(sql)
    assert found.positional == positional
    assert found.named == named


def test_positional_params():
    p = encode_params("SELECT $1, $2, $3", [1, None, Typed(None, "int4")])
    assert p == {"mode": "positional", "values": [1, {"value": None, "type": "unknown"},
                                                   {"value": None, "type": "int4"}]}


def test_named_params_sorted_by_name():
    p = encode_params("SELECT :b, :a", {"b": "x", "a": b"\x00"})
    assert p == {"mode": "named", "values": [{"name": "a", "value": b"\x00"}, {"name": "b", "value": "x"}]}


def test_value_conversions():
    vals = [decimal.Decimal("12.30"), uuid.UUID(int=1), datetime.date(2024, 2, 29),
            datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.timezone.utc), bytearray(b"ab")]
    p = encode_params("SELECT $1, $2, $3, $4, $5", vals)
    assert p["values"] == ["12.30", "00000000-0000-0000-0000-000000000001", "2024-02-29",
                           "2024-01-01T12:00:00+00:00", b"ab"]


@pytest.mark.parametrize(
    "sql,params,message",
    [
        ("SELECT $1, $2", [1], "placeholder $2 has no value: 1 parameter(s) given"),
        ("SELECT $1", [1, 2], "parameter $2 is not used by the SQL"),
        ("SELECT $2", [1, 2], "parameter $1 is not used"),
        ("SELECT $1", None, "placeholder $1 has no value: params is None"),
        ("SELECT :a", {"b": 1, "a": 2}, "parameter 'b' is not used by the SQL (no :b)"),
        ("SELECT :a, :c", {"a": 1}, "placeholder :c has no value"),
        ("SELECT :a", [1], "params is a list (positional) but the SQL uses :a"),
        ("SELECT $1", {"a": 1}, "params is a mapping (named) but the SQL uses $1"),
        ("SELECT $1", "x", "params must be a list or tuple"),
        ("SELECT $1", [2**63], "parameter $1: 9223372036854775808 is outside the signed 64-bit range"),
        ("SELECT $1", [object()], "parameter $1: a object cannot be sent"),
        ("SELECT :x", {"x": [1, {"a": 2}]}, "parameter :x: a dict cannot be sent"),
        ("SELECT $1", [[[[[[[[1]]]]]]]], "parameter $1: an array has more than 6 dimensions"),
        ("SELECT $1", ["\ud800"], "parameter $1: the str is not valid UTF-8"),
    ],
)
def test_parameter_mistakes_name_the_problem(sql, params, message):
    with pytest.raises(InvalidInput) as ei:
        encode_params(sql, params)
    assert message in str(ei.value)
    assert ei.value.client_side


def test_query_payload_checks():
    kw = dict(db_alias="default", result_format="json", max_rows=None, tag=None)
    assert query_payload("SELECT 1", None, **kw) == {"db_alias": "default", "sql": "SELECT 1", "result_format": "json"}
    with pytest.raises(InvalidInput, match="sql must be a non-empty str"):
        query_payload("  ", None, **kw)
    with pytest.raises(InvalidInput, match="result_format 'csv'"):
        query_payload("SELECT 1", None, **{**kw, "result_format": "csv"})
    with pytest.raises(InvalidInput, match="tag 'bad tag!'"):
        query_payload("SELECT 1", None, **{**kw, "tag": "bad tag!"})
    with pytest.raises(InvalidInput, match="max_rows must be a non-negative int"):
        query_payload("SELECT 1", None, **{**kw, "max_rows": -1})
    with pytest.raises(InvalidInput, match="row_shape 'objects' works with json and msgpack"):
        query_payload("SELECT 1", None, **{**kw, "result_format": "arrow_ipc", "row_shape": "objects"})


def test_exec_payload():
    p = exec_payload("INSERT INTO t VALUES ($1)", [1], db_alias="w", result_format="msgpack", tag="t1")
    assert p["allow_write"] is True and p["params"]["values"] == [1] and p["tag"] == "t1"
    p = exec_payload(None, None, db_alias="w", result_format="msgpack", tag=None,
                     statements=[("INSERT INTO t VALUES ($1)", [1]), ("DELETE FROM t", None)],
                     isolation="serializable")
    assert [s["sql"] for s in p["statements"]] == ["INSERT INTO t VALUES ($1)", "DELETE FROM t"]
    assert "sql" not in p and p["isolation"] == "serializable"
    with pytest.raises(InvalidInput, match=r"statements\[1\]: placeholder \$1 has no value"):
        exec_payload(None, None, db_alias="w", result_format="msgpack", tag=None,
                     statements=[("SELECT 1", None), ("SELECT $1", None)])
    with pytest.raises(InvalidInput, match="result_format 'arrow_ipc'"):
        exec_payload("DELETE FROM t", None, db_alias="w", result_format="arrow_ipc", tag=None)


def test_client_arguments():
    from molt_db_adapter import MoltClient

    with pytest.raises(InvalidInput, match="exactly one of worker_cmd and socket_path"):
        MoltClient()
    with pytest.raises(InvalidInput, match="worker_cmd must be a non-empty list"):
        MoltClient("molt_worker --stdio")


def test_missing_worker_binary_is_worker_unavailable(tmp_path):
    from molt_db_adapter import MoltClient, WorkerUnavailable

    with MoltClient([str(tmp_path / "no_such_worker")]) as c:
        with pytest.raises(WorkerUnavailable, match="cannot start the worker"):
            c.ping()
