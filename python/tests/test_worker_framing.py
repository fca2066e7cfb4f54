"""molt_worker framing and envelope (contract sections 2 to 4), over stdio
and over the Unix socket, against a real worker on a SQLite database."""
import os
import random
import struct

import msgpack
import pytest

from worker_client import Worker, decode, frame, WORKER_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(WORKER_BIN),
                                reason=f"{WORKER_BIN} is not built")


@pytest.fixture(params=["stdio", "socket"])
def worker(request, tmp_path):
    w = Worker({"default": f"sqlite://{tmp_path}/f.db"}, "--max-request-bytes", "4096",
               stdio=request.param == "stdio")
    w.start()
    yield w
    rc = w.stop()
    assert rc == 0, w.stderr


def ping_ok(conn, rid=999):
    conn.send({"request_id": rid, "entry": "ping"})
    resp = conn.recv()
    assert resp["request_id"] == rid and resp["status"] == "Ok", resp
    info = msgpack.unpackb(resp["payload"])
    assert info["pid"] > 0 and info["version"]


def test_ping(worker):
    ping_ok(worker.conn)


@pytest.mark.parametrize("length", [0, 4097, 0xFFFFFFFF])
def test_bad_length_closes(worker, length):
    c = worker.conn
    c.send_raw(struct.pack("<I", length) + b"\x80")
    resp = c.recv()
    assert resp["status"] == "InvalidInput" and resp["request_id"] == 0, resp
    assert "frame length" in resp["error"]
    assert c.at_eof()


def test_limit_is_inclusive(worker):
    c = worker.conn
    body = msgpack.packb({"request_id": 5, "entry": "ping", "pad": "x" * 100})
    body = msgpack.packb({"request_id": 5, "entry": "ping",
                          "pad": "x" * (4096 - len(body) + 100 - 2)})
    assert len(body) <= 4096
    c.send_raw(struct.pack("<I", len(body)) + body)
    assert c.recv()["status"] == "Ok"


@pytest.mark.parametrize("body,want_id,needle", [
    (msgpack.packb({"request_id": 7, "entry": "ping"})[:-2], 0, "truncated"),
    (msgpack.packb({"request_id": 7, "entry": "ping"}) + b"\xc0", 7, "trailing"),
    (msgpack.packb([1, 2, 3]), 0, "not a MsgPack map"),
    (b"\x82\xaarequest_id\x07\xa5entry\xa4p\xffng", 7, "UTF-8"),
    (b"\xdd\xff\xff\xff\xff", 0, "truncated"),          # a 4-billion array
    # a bad str first must not excuse what follows: a 4-billion map behind it
    # was once unpacked (msgpack-c asked for 128 GB) to find the request_id
    (b"\x83\xaarequest_id\x07\xa5entry\xa4p\xffng\xa1x\xdf\xff\xff\xff\xff", 0, "truncated"),
    (b"\x81\xc1\x00", 0, "invalid"),
    (b"\x91" * 40 + b"\xc0", 0, "deep"),
])
def test_bad_body_keeps_connection(worker, body, want_id, needle):
    c = worker.conn
    c.send_raw(struct.pack("<I", len(body)) + body)
    resp = c.recv()
    assert resp["status"] == "InvalidInput", resp
    assert resp["request_id"] == want_id
    assert needle in resp["error"]
    ping_ok(c)


@pytest.mark.parametrize("env,needle", [
    ({"entry": "ping"}, "request_id is missing"),
    ({"request_id": -1, "entry": "ping"}, "request_id"),
    ({"request_id": "1", "entry": "ping"}, "request_id"),
    ({"request_id": 3}, "entry is missing"),
    ({"request_id": 3, "entry": "nope"}, "unknown entry"),
    ({"request_id": 3, "entry": 5}, "entry must be a str"),
    ({"request_id": 3, "entry": "db_query"}, "needs a payload"),
    ({"request_id": 3, "entry": "db_query", "payload": "not bin"}, "payload must be bin"),
    ({"request_id": 3, "entry": "ping", "codec": "json"}, "codec"),
    ({"request_id": 3, "entry": "ping", "timeout_ms": 2 ** 33}, "timeout_ms"),
    ({"request_id": 3, "entry": "ping", "timeout_ms": "1"}, "timeout_ms"),
])
def test_envelope_errors(worker, env, needle):
    c = worker.conn
    c.send(env)
    resp = c.recv()
    assert resp["status"] == "InvalidInput", resp
    assert needle in resp["error"]
    want = env["request_id"] if isinstance(env.get("request_id"), int) and env["request_id"] >= 0 else 0
    assert resp["request_id"] == want
    ping_ok(c)


def test_unknown_keys_ignored(worker):
    c = worker.conn
    c.send({"request_id": 11, "entry": "ping", "whatever": [1, {"x": None}], "codec": "msgpack"})
    resp = c.recv()
    assert resp["status"] == "Ok" and resp["request_id"] == 11


def test_payload_errors(worker):
    c = worker.conn
    for payload, needle in [
        (b"\x93\x01\x02\x03", "not a MsgPack map"),
        (msgpack.packb({"sql": "select 1"}) + b"\x00", "trailing"),
        (b"\x81\xa3sql", "truncated"),
        (msgpack.packb({"sql": 1}), "sql"),
    ]:
        c.send({"request_id": 21, "entry": "db_query", "payload": payload})
        resp = c.recv()
        assert resp["status"] == "InvalidInput" and resp["request_id"] == 21, resp
        assert needle in resp["error"]


def test_duplicate_in_flight_id(worker):
    c = worker.conn
    slow = {"sql": "with recursive r(i) as (select 1 union all select i + 1 from r "
                   "where i < 30000000) select count(*) from r"}
    c.request("db_query", slow, rid=42, timeout_ms=3000)
    c.request("ping", rid=42)
    resp = c.recv()
    assert resp["request_id"] == 42 and resp["status"] == "InvalidInput", resp
    assert "already in flight" in resp["error"]
    c.request("cancel", {"request_id": 42}, rid=43)
    got = {}
    for _ in range(2):
        r = c.recv()
        got[r["request_id"]] = r
    assert got[42]["status"] == "Cancelled"
    assert decode(got[43]) == {"found": True}
    # the id is free again once answered
    ping_ok(c, rid=42)


def test_random_garbage_never_kills(worker):
    rnd = random.Random(6)
    c = worker.conn
    sent = 0
    for i in range(3000):
        kind = rnd.randrange(4)
        if kind == 0:
            body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 40)))
        elif kind == 1:
            env = {"request_id": rnd.randrange(1 << 20), "entry": rnd.choice(
                ["db_query", "db_exec", "cancel", "stats", "bogus"])}
            env["payload"] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 30)))
            body = msgpack.packb(env)
        elif kind == 2:
            good = msgpack.packb({"request_id": i + 100000, "entry": "ping"})
            pos = rnd.randrange(len(good))
            body = good[:pos] + bytes([rnd.randrange(256)]) + good[pos + 1:]
        else:
            payload = msgpack.packb({"sql": rnd.choice(["select 1", "select $1", ":x", ""]),
                                     "params": rnd.choice([None, 1, {"mode": "named", "values": [1]},
                                                           {"mode": "positional", "values": [[1]]}])})
            body = msgpack.packb({"request_id": i + 200000, "entry": "db_query",
                                  "payload": payload})
        c.send_raw(struct.pack("<I", len(body)) + body)
        sent += 1
    # every frame gets exactly one final answer (ids may repeat: count frames)
    answers = 0
    while answers < sent:
        r = c.recv(timeout=30)
        if not r.get("more"):
            answers += 1
    ping_ok(c)
    assert worker.proc.poll() is None


@pytest.mark.parametrize("n_sql", [1, 100_000])
def test_100k_parameters(tmp_path, n_sql):
    """100,000 values are more than SQLite takes: InvalidInput naming the
    cap, however many placeholders, and the worker goes on."""
    with Worker({"default": f"sqlite://{tmp_path}/p.db"}) as w:
        run_100k(w.conn, n_sql)


def run_100k(c, n_sql):
    sql = "select " + " + ".join(f"${i + 1}" for i in range(n_sql))
    r = c.query(sql, {"mode": "positional", "values": list(range(100_000))}, timeout_ms=20000)
    assert r["status"] == "InvalidInput" and "at most 32766 parameters" in r["error"], r
    ping_ok(c)
