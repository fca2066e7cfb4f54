"""molt_worker on a real SQLite file: entries, parameters, the read-only
guarantee, db_exec's capability and transactions, result formats, max_rows,
streaming, deadlines, cancel and disconnects (contract sections 5 to 10)."""
import json
import os
import sqlite3
import time

import msgpack
import pytest

from worker_client import Worker, decode, WORKER_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(WORKER_BIN),
                                reason=f"{WORKER_BIN} is not built")

SLOW = ("with recursive r(i) as (select 1 union all select i + 1 from r "
        "where i < 200000000) select count(*) from r")


@pytest.fixture
def dbfile(tmp_path):
    path = tmp_path / "w.db"
    con = sqlite3.connect(path)
    con.executescript("""
        create table items(id integer primary key, name text not null unique,
                           price real, data blob, qty integer);
        insert into items(name, price, data, qty) values
            ('apple', 1.5, x'0102', 3), ('pear', 2.25, null, 0), ('fig', null, x'', 7);
    """)
    con.commit()
    con.close()
    return path


@pytest.fixture
def w(dbfile):
    with Worker({"default": f"sqlite://{dbfile}", "ro": f"sqlite://{dbfile}"},
                "--allow-write", "default") as wk:
        yield wk


def q(conn, sql, params=None, **kw):
    return conn.query(sql, params, **kw)


def ex(conn, sql=None, params=None, **kw):
    kw.setdefault("allow_write", True)
    if sql is not None:
        kw["sql"] = sql
    if params is not None:
        kw["params"] = params
    return conn.call("db_exec", kw)


def test_query_json_and_msgpack(w):
    for fmt in ("json", "msgpack"):
        r = q(w.conn, "select id, name, price, data, qty from items order by id",
              result_format=fmt)
        assert r["codec"] == fmt
        d = decode(r)
        assert d["columns"] == ["id", "name", "price", "data", "qty"]
        assert d["types"] == ["integer", "text", "real", "blob", "integer"]
        assert d["row_count"] == 3 and d["truncated"] is False
        data = d["rows"][0][3]
        assert data == (b"\x01\x02" if fmt == "msgpack" else "AQI=")
        assert d["rows"][0][:3] == [1, "apple", 1.5]
        assert d["rows"][2][2] is None


def test_row_shape_objects(w):
    d = decode(q(w.conn, "select id, name from items where id = 1", row_shape="objects"))
    assert d["rows"] == [{"id": 1, "name": "apple"}]
    r = q(w.conn, "select 1", row_shape="objects", result_format="arrow_ipc")
    assert r["status"] == "InvalidInput"


def test_expression_types_from_storage_class(w):
    d = decode(q(w.conn, "select 1 + 1 as a, 'x' as b, 2.5 as c, x'00' as d, null as e"))
    assert d["types"] == ["integer", "text", "real", "blob", "null"]


def test_metrics(w):
    r = q(w.conn, "select * from items", tag="list.items-1")
    m = r["metrics"]
    for k in ("queue_us", "handler_us", "exec_us", "decode_us", "db_row_count",
              "db_bytes_in", "db_bytes_out"):
        assert isinstance(m[k], int) and m[k] >= 0, k
    assert m["db_alias"] == "default" and m["db_tag"] == "list.items-1"
    assert m["db_row_count"] == 3 and m["db_bytes_out"] == len(r["payload"])
    assert m["db_result_format"] == "json"
    r = q(w.conn, "select 1", tag="bad tag!")
    assert r["status"] == "InvalidInput" and "tag" in r["error"]


def test_positional_and_named(w):
    d = decode(q(w.conn, "select name from items where id = $1 or id = $2 order by id",
                 {"mode": "positional", "values": [1, 3]}))
    assert d["rows"] == [["apple"], ["fig"]]
    d = decode(q(w.conn, "select :b || '-' || :a, ':a', \":a\" from (select 1 as \":a\")",
                 {"mode": "named", "values": [{"name": "a", "value": "A"},
                                              {"name": "b", "value": "B"}]}))
    assert d["rows"] == [["B-A", ":a", 1]]
    # typed entries and every value kind
    d = decode(q(w.conn, "select $1, $2, $3, $4, $5, $6",
                 {"mode": "positional", "values": [
                     None if False else {"value": None, "type": "text"}, True, -5, 2.5, "s",
                     b"\x00\x01"]}, result_format="msgpack"))
    assert d["rows"] == [[None, 1, -5, 2.5, "s", b"\x00\x01"]]


@pytest.mark.parametrize("params,needle", [
    ({"mode": "positional", "values": []}, "no value for placeholder $1"),
    ({"mode": "positional", "values": [1, 2]}, "parameter $2 is not used"),
    ({"mode": "named", "values": [{"name": "x", "value": 1}]}, "placeholder :x"),
    ({"mode": "positional", "values": [None]}, "nil without a type"),
    ({"mode": "positional", "values": [[1]]}, "SQLite has no array type"),
    ({"mode": "positional", "values": [{"a": 1}]}, "needs \"value\""),
    ({"mode": "positional", "values": [2 ** 64 - 1]}, "signed 64-bit"),
    ({"mode": "sideways", "values": [1]}, "params.mode"),
    ({"mode": "positional", "values": 1}, "params.values"),
])
def test_param_errors(w, params, needle):
    sql = "select :x" if params["mode"] == "named" and "x" not in str(params) else "select $1"
    if params["mode"] == "named":
        sql = "select :y"
    r = q(w.conn, sql, params)
    assert r["status"] == "InvalidInput", r
    assert needle in r["error"] or "placeholder :y" in r["error"], r["error"]


def test_param_errors_named_extra(w):
    r = q(w.conn, "select :a", {"mode": "named", "values": [
        {"name": "a", "value": 1}, {"name": "b", "value": 2}]})
    assert r["status"] == "InvalidInput" and ":b is not used" in r["error"]
    r = q(w.conn, "select :a, :c", {"mode": "named", "values": [{"name": "a", "value": 1}]})
    assert r["status"] == "InvalidInput" and ":c" in r["error"]


def test_payload_rules(w):
    c = w.conn
    assert "unknown db_alias" in c.call("db_query", {"sql": "select 1", "db_alias": "nope"})["error"]
    assert "sql" in c.call("db_query", {"db_alias": "default"})["error"]
    assert "empty" in c.call("db_query", {"sql": "   "})["error"]
    assert "result_format" in c.call("db_query", {"sql": "select 1", "result_format": "xml"})["error"]
    assert "allow_write" in c.call("db_query", {"sql": "select 1", "allow_write": True})["error"]
    assert "one statement" in c.call("db_query", {"sql": "select 1; select 2"})["error"]


def test_read_only_guarantee(w, dbfile):
    c = w.conn
    for sql in ["insert into items(name) values ('x')",
                "update items set qty = 0",
                "delete from items",
                "with x as (select 1) insert into items(name) select 'y' from x",
                "create table z(a)",
                "drop table items",
                "attach database ':memory:' as m",
                "pragma query_only = 0",
                "begin",
                "pragma user_version = 5"]:
        r = q(c, sql)
        assert r["status"] == "DbError", (sql, r)
        assert r["sqlstate"] == "25006", (sql, r)
    # nothing changed, and the next write through db_exec still works
    con = sqlite3.connect(dbfile)
    assert con.execute("select count(*) from items").fetchone()[0] == 3
    assert con.execute("pragma user_version").fetchone()[0] == 0
    con.close()
    assert ex(c, "insert into items(name) values ('kiwi')")["status"] == "Ok"
    # after a write, a query on the same connection is read-only again
    assert q(c, "delete from items")["sqlstate"] == "25006"


def test_exec_capability(w):
    r = w.conn.call("db_exec", {"sql": "delete from items"})
    assert r["status"] == "InvalidInput" and "allow_write" in r["error"]
    r = w.conn.call("db_exec", {"sql": "delete from items", "allow_write": True, "db_alias": "ro"})
    assert r["status"] == "InvalidInput" and "db.write" in r["error"]
    r = w.conn.call("db_exec", {"sql": "select 1", "allow_write": True, "result_format": "arrow_ipc"})
    assert r["status"] == "InvalidInput"


def test_exec_results(w, dbfile):
    c = w.conn
    d = decode(ex(c, "insert into items(name, qty) values ($1, $2)",
                  {"mode": "positional", "values": ["plum", 4]}))
    assert d["rows_affected"] == 1 and d["last_insert_id"] == 4
    r = ex(c, "update items set qty = qty + 1 where qty > 0", result_format="msgpack")
    assert decode(r) == {"rows_affected": 3}
    assert r["metrics"]["db_rows_affected"] == 3
    d = decode(ex(c, "insert into items(name) values ('lime') returning id, name"))
    assert d["rows_affected"] == 1 and d["rows"] == [[5, "lime"]] and d["columns"] == ["id", "name"]
    assert d["last_insert_id"] == 5


def test_statements_all_or_nothing(w, dbfile):
    c = w.conn
    d = decode(ex(c, statements=[
        {"sql": "insert into items(name) values (:n)",
         "params": {"mode": "named", "values": [{"name": "n", "value": "a1"}]}},
        {"sql": "update items set qty = 9 where name = 'a1'"},
    ]))
    assert [x["rows_affected"] for x in d["results"]] == [1, 1]
    r = ex(c, statements=[
        {"sql": "insert into items(name) values ('b1')"},
        {"sql": "insert into items(name) values ('apple')"},  # unique violation
    ], isolation="serializable")
    assert r["status"] == "DbError" and r["sqlstate"] == "23505"
    con = sqlite3.connect(dbfile)
    assert con.execute("select count(*) from items where name = 'b1'").fetchone()[0] == 0
    con.close()
    r = ex(c, statements=[{"sql": "select 1"}], sql="select 1")
    assert r["status"] == "InvalidInput"
    r = ex(c, statements=[{"sql": "select 1"}], isolation="chaos")
    assert r["status"] == "InvalidInput"
    r = ex(c, statements=[{"sql": "select $1"}])
    assert r["status"] == "InvalidInput" and "statements[0]" in r["error"]


def test_max_rows_truncated(w):
    d = decode(q(w.conn, "select id from items order by id", max_rows=2))
    assert d["rows"] == [[1], [2]] and d["truncated"] is True and d["row_count"] == 2
    d = decode(q(w.conn, "select id from items order by id", max_rows=3))
    assert d["truncated"] is False


def test_streaming(w):
    for fmt in ("json", "msgpack"):
        r = q(w.conn, "with recursive r(i) as (select 1 union all select i + 1 from r "
                      "where i < 25) select i from r", stream=True, batch_rows=10,
              result_format=fmt)
        assert r["status"] == "Ok"
        parts = [decode(p) for p in r["parts"]]
        assert all(p["more"] is True for p in r["parts"])
        assert parts[0] == {"columns": ["i"], "types": [""]} or parts[0]["columns"] == ["i"]
        rows = [x[0] for p in parts[1:] for x in p["rows"]]
        assert rows == list(range(1, 26))
        assert [len(p["rows"]) for p in parts[1:]] == [10, 10, 5]
        assert decode(r) == {"row_count": 25, "truncated": False}


def test_arrow(w):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.ipc as ipc
    r = q(w.conn, "select id, name, price, data from items order by id", result_format="arrow_ipc")
    t = ipc.open_stream(decode(r)).read_all()
    assert t.schema.types == [pa.int64(), pa.string(), pa.float64(), pa.binary()]
    assert t.column("name").to_pylist() == ["apple", "pear", "fig"]
    assert t.column("price").to_pylist() == [1.5, 2.25, None]
    r = q(w.conn, "with recursive r(i) as (select 1 union all select i + 1 from r "
                  "where i < 25) select cast(i as integer) as i from r",
          result_format="arrow_ipc", stream=True, batch_rows=10)
    stream = b"".join(p["payload"] for p in r["parts"]) + r["payload"]
    t = ipc.open_stream(stream).read_all()
    assert t.num_rows == 25 and len(r["parts"]) == 4  # schema + 3 batches


def test_arrow_off_affinity_values_become_utf8(w, dbfile):
    """A column holding values outside its declared affinity becomes Utf8
    (the contract, section 7); in a stream only before the first batch went
    out, after that it is DbError 42804."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.ipc as ipc
    con = sqlite3.connect(dbfile)
    con.execute("create table mixed(id integer primary key, n integer, r real)")
    con.executemany("insert into mixed(n, r) values (?, ?)",
                    [(i, i / 2) for i in range(1, 30)] + [("many", "x"), (7, 1.5)])
    con.commit()
    con.close()
    r = q(w.conn, "select id, n, r from mixed order by id", result_format="arrow_ipc")
    t = ipc.open_stream(decode(r)).read_all()
    assert t.schema.types == [pa.int64(), pa.string(), pa.string()]
    n = t.column("n").to_pylist()
    assert n[:3] == ["1", "2", "3"] and n[29] == "many" and n[30] == "7" and len(n) == 31
    assert t.column("r").to_pylist()[29] == "x"
    assert decode(q(w.conn, "select count(*) from mixed"))["rows"] == [[31]]
    # streamed: the mismatch (row 30) is inside the first batch of 50
    r = q(w.conn, "select n from mixed order by id", result_format="arrow_ipc",
          stream=True, batch_rows=50)
    t = ipc.open_stream(b"".join(p["payload"] for p in r["parts"]) + r["payload"]).read_all()
    assert t.schema.types == [pa.string()] and t.num_rows == 31
    # ... and after a first batch of 10 fixed the column as Int64
    r = q(w.conn, "select n from mixed order by id", result_format="arrow_ipc",
          stream=True, batch_rows=10)
    assert r["status"] == "DbError" and r["sqlstate"] == "42804", r


def test_wal_mode(w, dbfile):
    assert q(w.conn, "select 1")["status"] == "Ok"  # opens a connection
    # WAL is persistent in the file: a fresh connection sees it
    con = sqlite3.connect(dbfile)
    assert con.execute("pragma journal_mode").fetchone()[0] == "wal"
    con.close()
    d = decode(ex(w.conn, "pragma journal_mode"))
    assert d["rows"] == [["wal"]]


def test_timeout(w):
    c = w.conn
    t0 = time.monotonic()
    r = q(c, SLOW, timeout_ms=300)
    took = time.monotonic() - t0
    assert r["status"] == "Timeout", r
    # SLOW runs for many seconds: an answer within 2 s is the timeout's, not
    # the statement's end, with room for a loaded machine or the ASan build
    assert 0.29 <= took <= 2.0, took
    # the connection is usable and the statement is gone (the interrupted
    # statement hands its connection back a moment after the answer)
    assert decode(q(c, "select 1"))["rows"] == [[1]]
    deadline = time.monotonic() + 1.0
    while decode(c.call("stats"))["aliases"]["default"]["in_use"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert decode(c.call("stats"))["aliases"]["default"]["in_use"] == 0


def test_cancel_and_ping_while_slow(w):
    c = w.conn
    slow = c.request("db_query", {"sql": SLOW}, timeout_ms=10000)
    time.sleep(0.1)
    t0 = time.monotonic()
    ping = c.request("ping")
    r = c.recv()
    assert r["request_id"] == ping and r["status"] == "Ok"
    assert time.monotonic() - t0 < 1.0  # SLOW runs for many seconds
    cid = c.request("cancel", {"request_id": slow})
    got = {}
    for _ in range(2):
        x = c.recv()
        got[x["request_id"]] = x
    assert got[slow]["status"] == "Cancelled"
    assert decode(got[cid]) == {"found": True}
    r = c.call("cancel", {"request_id": 123456})
    assert decode(r) == {"found": False}


def test_completion_order(w):
    c = w.conn
    slow = c.request("db_query", {"sql": SLOW}, timeout_ms=600)
    fast = c.request("db_query", {"sql": "select 1"})
    first, second = c.recv(), c.recv()
    assert first["request_id"] == fast and first["status"] == "Ok"
    assert second["request_id"] == slow and second["status"] == "Timeout"


def test_disconnect_cancels(dbfile):
    with Worker({"default": f"sqlite://{dbfile}"}, stdio=False) as wk:
        c1 = wk.connect()
        c1.request("db_query", {"sql": SLOW}, timeout_ms=20000)
        c2 = wk.conn
        deadline = time.monotonic() + 5  # until the query holds its connection
        while decode(c2.call("stats"))["aliases"]["default"]["in_use"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        st = decode(c2.call("stats"))
        assert st["aliases"]["default"]["in_use"] == 1
        c1.sock.close()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            st = decode(c2.call("stats"))
            if st["aliases"]["default"]["in_use"] == 0:
                break
            time.sleep(0.02)
        assert st["aliases"]["default"]["in_use"] == 0
        assert st["worker"]["inflight"] == 1  # the stats request itself


def test_memory_database():
    with Worker({"default": "sqlite::memory:"}, "--allow-write", "default") as wk:
        c = wk.conn
        assert ex(c, "create table t(a)")["status"] == "Ok"
        assert ex(c, "insert into t values (1), (2)")["status"] == "Ok"
        assert decode(q(c, "select count(*) from t"))["rows"] == [[2]]


def test_busy_timeout(dbfile):
    with Worker({"default": f"sqlite://{dbfile}"}, "--allow-write", "default",
                "--pool", "default:sqlite_busy_timeout_ms=300") as wk:
        c = wk.conn
        assert ex(c, "update items set qty = 1 where id = 1")["status"] == "Ok"  # WAL on
        other = sqlite3.connect(dbfile, isolation_level=None)
        other.execute("begin immediate")  # holds the write lock
        t0 = time.monotonic()
        r = ex(c, "update items set qty = 2 where id = 1")
        took = time.monotonic() - t0
        assert r["status"] == "DbError" and r["sqlstate"] == "55P03", r
        assert 0.25 < took < 2, took
        # readers are not blocked by a writer in WAL mode
        assert decode(q(c, "select qty from items where id = 1"))["rows"] == [[1]]
        other.execute("rollback")
        other.close()
        assert ex(c, "update items set qty = 2 where id = 1")["status"] == "Ok"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_streaming_backpressure_bounds_memory():
    """A client that stops reading a 200 MB stream does not make the worker
    buffer it: production pauses while the write queue is full."""
    with Worker({"default": "sqlite::memory:"}) as wk:
        c = wk.conn
        base = rss_kb(wk.proc.pid)
        rid = c.request("db_query", {
            "sql": "with recursive r(i) as (select 1 union all select i + 1 from r "
                   "where i < 200000) select i, randomblob(1000) from r",
            "stream": True, "batch_rows": 1000, "result_format": "msgpack",
            "max_rows": 1000000}, timeout_ms=60000)
        time.sleep(1.5)  # not reading
        grown = rss_kb(wk.proc.pid) - base
        assert grown < 60000, f"worker grew by {grown} kB while the client did not read"
        rows = 0
        while True:
            r = c.recv(timeout=30)
            assert r["request_id"] == rid
            if not r.get("more"):
                break
            rows += len(msgpack.unpackb(r["payload"]).get("rows", []))
        assert r["status"] == "Ok" and rows == 200000


def test_cancel_while_paused():
    with Worker({"default": "sqlite::memory:"}) as wk:
        c = wk.conn
        rid = c.request("db_query", {
            "sql": "with recursive r(i) as (select 1 union all select i + 1 from r "
                   "where i < 200000) select i, randomblob(1000) from r",
            "stream": True, "batch_rows": 1000, "max_rows": 1000000}, timeout_ms=800)
        time.sleep(1.5)
        final = None
        while final is None:
            r = c.recv(timeout=30)
            if not r.get("more"):
                final = r
        assert final["request_id"] == rid and final["status"] == "Timeout"
        st = decode(c.call("stats"))["aliases"]["default"]
        assert st["in_use"] == 0
