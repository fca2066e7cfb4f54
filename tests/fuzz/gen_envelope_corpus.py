#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_envelope: request frames as clients send
them (the first byte of each seed is the harness's piece size).

Run: .venv/bin/python tests/fuzz/gen_envelope_corpus.py  (needs msgpack)
The outputs are committed; rerun only when changing the seeds.
"""
import os
import struct

import msgpack

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "envelope")


def frame(obj):
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack("<I", len(body)) + body


def req(rid, entry, payload=None, **kw):
    env = {"request_id": rid, "entry": entry, **kw}
    if payload is not None:
        env["payload"] = msgpack.packb(payload, use_bin_type=True)
    return frame(env)


SEEDS = {
    "query_positional": req(1, "db_query", {
        "sql": "SELECT $1::int8, $2", "params": {"mode": "positional", "values": [
            1, {"value": None, "type": "text"}]}, "result_format": "msgpack"}, timeout_ms=500),
    "query_named": req(2, "db_query", {
        "db_alias": "lite", "sql": "select :a, ':x', \"q\" -- :c\n, $$ :d $$",
        "params": {"mode": "named", "values": [{"name": "a", "value": "x"}]},
        "stream": True, "batch_rows": 10, "row_shape": "objects", "tag": "t.1"}),
    "exec_statements": req(3, "db_exec", {
        "db_alias": "lite", "allow_write": True, "isolation": "serializable",
        "statements": [{"sql": "insert into t values ($1)", "params": {
            "mode": "positional", "values": [b"\x00\xff", 1.5, True]}}]}),
    "query_arrays": req(7, "db_query", {
        "sql": "SELECT $1::text[], $2, $3", "params": {"mode": "positional", "values": [
            [["a\"b", None], ["\\", "NULL"]], {"value": [1, None, 2.5], "type": "float8[]"},
            [[b"\x01"], [b""]]]}}),
    "cancel_ping_stats": req(4, "cancel", {"request_id": 1}) + req(5, "ping") + req(6, "stats"),
    "bad_lengths": struct.pack("<I", 0) + struct.pack("<I", 1 << 30),
    "not_a_map": frame([1, 2, 3]) + frame({"request_id": -1, "entry": 7}),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    for piece in (0, 5):
        with open(os.path.join(OUT, f"{name}_{piece}"), "wb") as f:
            f.write(bytes([piece]) + data)
