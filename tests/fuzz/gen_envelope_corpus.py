#!/usr/bin/env python3
"""Writes the hand-written seeds of fuzz_envelope (request frames as clients
send them; the first byte of each seed is the harness's piece size) and of
fuzz_payload (one payload of each entry, and near misses).

Run: .venv/bin/python tests/fuzz/gen_envelope_corpus.py  (needs msgpack)
The outputs are committed; rerun only when changing the seeds.
"""
import os
import struct

import msgpack

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
OUT = os.path.join(CORPUS, "envelope")


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

# One payload of each entry that takes one (ping and stats take none), and
# near misses of the listen payload's checks.
PAYLOADS = {
    "query": ("db_query", {
        "db_alias": "lite", "sql": "select :a, :b", "params": {"mode": "named", "values": [
            {"name": "a", "value": [1, None]}, {"name": "b", "value": -2, "type": "int8"}]},
        "result_format": "json", "row_shape": "objects", "pin_primary": True}),
    "exec": ("db_exec", {
        "allow_write": True, "statements": [
            {"sql": "update t set a = $1", "params": {"mode": "positional", "values": [1]}},
            {"sql": "delete from t"}]}),
    "cancel": ("cancel", {"request_id": 7}),
    "copy_in": ("copy_in", {
        "allow_write": True, "table": "s.t", "columns": ["a", "b\"c"],
        "rows": [[1, "x\ty"], [None, [b"\x00", 2.5]], [True, {"k": 1}]]}),
    "copy_out": ("copy_out", {"sql": "SELECT a, b FROM t WHERE a > 1"}),
    "tx_begin": ("tx_begin", {
        "db_alias": "default", "isolation": "repeatable_read", "read_only": True,
        "deferrable": False}),
    "tx_begin_nested": ("tx_begin", {"tx_id": 3}),
    "tx_commit": ("tx_commit", {"tx_id": 3}),
    "tx_rollback": ("tx_rollback", {"tx_id": 18446744073709551615}),
    "query_in_tx": ("db_query", {"sql": "SELECT 1", "tx_id": 3, "max_rows": 5}),
    "listen": ("listen", {"channels": ["jobs", "Events \"x\"", "\u00e9t\u00e9"]}),
    "listen_alias": ("listen", {"db_alias": "default", "channels": ["a" * 63]}),
    "listen_sqlite": ("listen", {"db_alias": "lite", "channels": ["a"]}),
    "listen_twice": ("listen", {"channels": ["a", "b", "a"]}),
    "listen_bad": ("listen", {"channels": ["a" * 64, "", "n\x00ul", 7]}),
    "listen_many": ("listen", {"channels": [f"c{i}" for i in range(65)]}),
}
for name, (entry, payload) in PAYLOADS.items():
    SEEDS[name] = req(100 + len(SEEDS), entry, payload)

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    for piece in (0, 5):
        with open(os.path.join(OUT, f"{name}_{piece}"), "wb") as f:
            f.write(bytes([piece]) + data)

os.makedirs(os.path.join(CORPUS, "payload"), exist_ok=True)
for name, (entry, payload) in PAYLOADS.items():
    with open(os.path.join(CORPUS, "payload", name), "wb") as f:
        f.write(msgpack.packb(payload, use_bin_type=True))
