"""The copy_in entry against a real worker and a real PostgreSQL: every
common type round-trips (NULLs, arrays, text that looks like COPY's own
escapes), table and column names stay names, a read-only client changes
nothing, and a bad row leaves the table as it was."""
import datetime
import decimal
import os
import time
import uuid

import pytest

from worker_client import Worker, WORKER_BIN, decode

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)"),
]

ALL_TYPES = """create table copy_types (
    i2 int2, i4 int4, i8 int8, f8 float8, num numeric, t text, b bool, by bytea,
    u uuid, d date, ts timestamptz, j jsonb, ia int4[], ta text[], fa float8[][])"""
COLS = ["i2", "i4", "i8", "f8", "num", "t", "b", "by", "u", "d", "ts", "j", "ia", "ta", "fa"]


def copy_in(conn, table, rows, columns=None, allow_write=True, **extra):
    payload = {"table": table, "rows": rows, "allow_write": allow_write}
    if columns is not None:
        payload["columns"] = columns
    payload.update(extra)
    return conn.call("copy_in", payload)


def test_every_common_type_round_trips(pg):
    pg.execute("drop table if exists copy_types")
    pg.execute(ALL_TYPES)
    u = uuid.uuid4()
    tricky = "tab\there\nnewline \\N back\\slash \\. \r\n é"
    rows = [
        [1, -2147483648, 2**63 - 1, 1.5, "12345678901234567890.000000001", tricky, True,
         b"\x00\x01\\\xff", str(u), "2024-02-29", "2024-02-29T12:34:56.789012+00:00",
         '{"a": [1, "x\\ty"]}', [1, None, 3], ["a", None, "NULL", "", 'q"uote', "b\\s"],
         [[1.5, None], [float("inf"), -0.0]]],
        [None] * 15,
        [-32768, 0, -(2**63), float("nan"), "NaN", "", False, b"", None, "0044-03-15 BC",
         "1999-12-31 23:59:59-08", "null", [], [], []],
    ]
    with Worker({"default": DSN}, "--allow-write", "default") as w:
        r = copy_in(w.conn, "copy_types", rows, COLS)
        assert r["status"] == "Ok", r
        assert decode(r) == {"rows_affected": 3}
        assert r["metrics"]["db_rows_affected"] == 3
    cols = ", ".join(c if c != "d" else "d::text" for c in COLS)
    got = pg.execute(f"select {cols} from copy_types order by i2 nulls first").fetchall()
    null_row, low, first = got
    assert null_row == (None,) * 15
    assert first[:5] == (1, -2147483648, 2**63 - 1, 1.5,
                         decimal.Decimal("12345678901234567890.000000001"))
    assert first[5] == tricky
    assert first[6] is True and bytes(first[7]) == b"\x00\x01\\\xff" and first[8] == u
    assert first[9] == "2024-02-29"
    assert first[10] == datetime.datetime(2024, 2, 29, 12, 34, 56, 789012,
                                          tzinfo=datetime.timezone.utc)
    assert first[11] == {"a": [1, "x\ty"]}
    assert first[12] == [1, None, 3]
    assert first[13] == ["a", None, "NULL", "", 'q"uote', "b\\s"]
    assert first[14] == [[1.5, None], [float("inf"), -0.0]]
    assert low[0] == -32768 and low[2] == -(2**63) and low[3] != low[3]  # NaN
    assert low[4].is_nan() and low[5] == "" and low[6] is False and bytes(low[7]) == b""
    assert pg.execute("select d::text, ts = '2000-01-01 07:59:59+00', j::text from copy_types "
                      "where i2 = -32768").fetchone() == ("0044-03-15 BC", True, "null")
    assert low[12] == [] and low[13] == [] and low[14] == []


def test_names_are_identifiers_never_sql(pg):
    evil_table = 'x"; drop table copy_victim; --'
    evil_col = "c) from stdin; drop table copy_victim; --"
    pg.execute("drop table if exists copy_victim")
    pg.execute("create table copy_victim (id int)")
    pg.execute("insert into copy_victim values (1)")
    pg.execute("create schema if not exists \"Odd Schema\"")
    pg.execute(f'drop table if exists "Odd Schema"."{evil_table.replace(chr(34), 2 * chr(34))}"')
    pg.execute(f'create table "Odd Schema"."{evil_table.replace(chr(34), 2 * chr(34))}" '
               f'("{evil_col}" text, "Mixed" int)')
    with Worker({"default": DSN}, "--allow-write", "default") as w:
        c = w.conn
        r = copy_in(c, ["Odd Schema", evil_table], [["v", 1], ["w", 2]], [evil_col, "Mixed"])
        assert r["status"] == "Ok", r
        bad = [({"table": ""}, "table name is empty"),
               ({"table": "t\x00"}, "table name holds a NUL byte"),
               ({"table": "x" * 64}, "table name is longer than 63 bytes"),
               ({"table": ["a", "b", "c"]}, "table must be a str or [schema, table]"),
               ({"table": "copy_victim", "columns": ["id", "id"]}, "columns[1] is given twice"),
               ({"table": "copy_victim", "columns": []}, "columns must be a non-empty array"),
               ({"table": "copy_victim", "rows": [[1], [1, 2]]}, "rows[1] has 2 values, not 1"),
               ({"table": "copy_victim", "rows": [[{"a": 1}]]}, "rows[0][0]: a map cannot be copied")]
        for change, text in bad:
            payload = {"table": "copy_victim", "rows": [[1]], "allow_write": True}
            payload.update(change)
            r = c.call("copy_in", payload)
            assert r["status"] == "InvalidInput" and text in r["error"], (change, r)
    got = pg.execute(f'select "{evil_col}", "Mixed" from "Odd Schema".'
                     f'"{evil_table.replace(chr(34), 2 * chr(34))}" order by 2').fetchall()
    assert got == [("v", 1), ("w", 2)]
    assert pg.execute("select count(*) from copy_victim").fetchone()[0] == 1


def test_a_read_only_client_changes_nothing(pg):
    pg.execute("drop table if exists copy_ro")
    pg.execute("create table copy_ro (id int)")
    pg.execute("insert into copy_ro values (1)")
    with Worker({"default": DSN}) as w:
        r = copy_in(w.conn, "copy_ro", [[2], [3]])
        assert r["status"] == "InvalidInput", r
        assert 'alias "default" does not grant db.write' in r["error"]
    with Worker({"default": DSN}, "--allow-write", "default") as w:
        r = copy_in(w.conn, "copy_ro", [[2]], allow_write=False)
        assert r["status"] == "InvalidInput" and "copy_in needs allow_write: true" in r["error"]
        r = w.conn.call("copy_in", {"table": "copy_ro", "rows": [[2]]})
        assert r["status"] == "InvalidInput" and "copy_in needs allow_write: true" in r["error"]
    assert pg.execute("select array_agg(id) from copy_ro").fetchone()[0] == [1]


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_a_refused_copy_is_refused_before_its_rows_are_unpacked(pg):
    """Alias, capability and transaction are judged on the payload's
    indexed keys: a refused copy_in of a million values costs the worker
    its bytes, not the ~24 MB of objects an unpack would make."""
    rows = [[1] * 100 for _ in range(10_000)]
    with Worker({"default": DSN}) as w:
        assert w.conn.call("db_query", {"sql": "select 1"})["status"] == "Ok"
        before = peak_rss_kb(w.proc.pid)
        for _ in range(3):
            r = copy_in(w.conn, "copy_ro", rows)
            assert r["status"] == "InvalidInput" and "does not grant db.write" in r["error"], r
        grew_mb = (peak_rss_kb(w.proc.pid) - before) / 1024
        assert grew_mb < 10, f"a refused copy_in raised the worker's peak RSS by {grew_mb:.1f} MB"


def test_copy_in_refuses_a_transaction_id(pg):
    """copy_in runs in a transaction of its own: given a session's tx_id it
    is refused rather than committed behind the transaction's back."""
    pg.execute("drop table if exists copy_tx")
    pg.execute("create table copy_tx (id int)")
    with Worker({"default": DSN}, "--allow-write", "default") as w:
        r = w.conn.call("tx_begin", {"allow_write": True})
        assert r["status"] == "Ok", r
        tx = decode(r)["tx_id"]
        r = copy_in(w.conn, "copy_tx", [[42]], tx_id=tx)
        assert r["status"] == "InvalidInput", r
        assert "does not run in a session's transaction (tx_id)" in r["error"]
        assert w.conn.call("tx_rollback", {"tx_id": tx})["status"] == "Ok"
    assert pg.execute("select count(*) from copy_tx").fetchone()[0] == 0


def test_a_bad_row_copies_nothing(pg):
    pg.execute("drop table if exists copy_all_or_none")
    pg.execute("create table copy_all_or_none (id int primary key, n int)")
    rows = [[i, i] for i in range(1000)]
    rows[700][1] = "not a number"
    with Worker({"default": DSN}, "--allow-write", "default") as w:
        r = copy_in(w.conn, "copy_all_or_none", rows, ["id", "n"])
        assert r["status"] == "DbError" and r["sqlstate"] == "22P02", r
        dup = [[1, 1], [1, 2]]
        r = copy_in(w.conn, "copy_all_or_none", dup, ["id", "n"])
        assert r["status"] == "DbError" and r["sqlstate"] == "23505", r
        # the connection is clean for the next one
        r = copy_in(w.conn, "copy_all_or_none", [[5, 6]], ["id", "n"])
        assert r["status"] == "Ok", r
    assert pg.execute("select array_agg(id) from copy_all_or_none").fetchone()[0] == [5]


def test_a_large_copy_and_its_cancel(pg):
    pg.execute("drop table if exists copy_big")
    pg.execute("create table copy_big (id int8, t text)")
    n = 100_000
    rows = [[i, f"row {i}"] for i in range(n)]
    with Worker({"default": DSN}, "--allow-write", "default") as w:
        r = copy_in(w.conn, "copy_big", rows)
        assert r["status"] == "Ok" and decode(r) == {"rows_affected": n}, r
        # a COPY blocked behind a lock is cancelled down to the server
        pg.execute("begin")
        pg.execute("lock table copy_big")
        rid = w.conn.request("copy_in", {"table": "copy_big", "rows": [[1, "x"]],
                                         "allow_write": True}, timeout_ms=500)
        resp = w.conn.recv(timeout=10)
        assert resp["request_id"] == rid and resp["status"] == "Timeout", resp
        pg.execute("rollback")
    assert pg.execute("select count(*), sum(id) from copy_big").fetchone() == (n, n * (n - 1) // 2)


def test_sqlite_says_not_supported(tmp_path):
    with Worker({"default": f"sqlite:{tmp_path}/c.db"}, "--allow-write", "default") as w:
        r = copy_in(w.conn, "t", [[1]])
        assert r["status"] == "InvalidInput", r
        assert "copy_in is not supported on SQLite" in r["error"]


def test_copy_out_reports_rows_as_db_query_does(pg):
    pa = pytest.importorskip("pyarrow")
    pg.execute("drop table if exists copy_types")
    pg.execute(ALL_TYPES)
    rows = [[1, 2, 3, 1.5, "1.25", "a\tb", True, b"\x01", "00000000-0000-0000-0000-000000000001",
             "2024-01-02", "2024-01-02T03:04:05+00:00", '{"k": 1}', [1, None], ["x", None],
             [[1.0]]], [None] * 15]
    sql = "select " + ", ".join(COLS) + " from copy_types order by i2 nulls last"
    with Worker({"default": DSN}, "--allow-write", "default") as w:
        c = w.conn
        assert copy_in(c, "copy_types", rows, COLS)["status"] == "Ok"
        want = decode(c.query(sql, result_format="msgpack"))
        got = c.call("copy_out", {"sql": sql, "result_format": "msgpack"})
        assert got["status"] == "Ok", got
        got = decode(got)
        assert got["columns"] == want["columns"] and got["types"] == want["types"]
        assert got["rows"] == want["rows"] and got["row_count"] == 2
        # Arrow, streamed in batches of one row: one IPC stream
        r = c.call("copy_out", {"sql": sql, "result_format": "arrow_ipc", "stream": True,
                                "batch_rows": 1})
        assert r["status"] == "Ok", r
        data = b"".join(p["payload"] for p in r["parts"]) + r["payload"]
        table = pa.ipc.open_stream(data).read_all()
        assert table.num_rows == 2 and table.column_names == COLS
        assert table.column("t").to_pylist() == ["a\tb", None]
        assert table.column("ia").to_pylist()[1] is None


def test_copy_out_stays_read_only_and_in_its_parentheses(pg):
    pg.execute("drop table if exists copy_ro2")
    pg.execute("create table copy_ro2 (id int)")
    pg.execute("insert into copy_ro2 values (1)")
    pg.execute("drop sequence if exists copy_seq")
    pg.execute("create sequence copy_seq")
    path = f"/tmp/molt_copy_out_escape_{os.getpid()}"
    with Worker({"default": DSN}) as w:
        c = w.conn
        r = c.call("copy_out", {"sql": "select nextval('copy_seq')"})
        assert r["status"] == "DbError" and r["sqlstate"] == "25006", r
        r = c.call("copy_out", {"sql": "with d as (delete from copy_ro2 returning id) select * from d"})
        assert r["status"] == "DbError" and r["sqlstate"] == "25006", r
        r = c.call("copy_out", {"sql": f"select 1) to '{path}' --"})
        assert r["status"] == "DbError" and r["sqlstate"] == "42601", r
        r = c.call("copy_out", {"sql": "select $1::int", "params": {"mode": "positional",
                                                                   "values": [1]}})
        assert r["status"] == "InvalidInput" and "copy_out takes no parameters" in r["error"]
        r = c.call("copy_out", {"sql": "select 1", "tx_id": 1})
        assert r["status"] == "InvalidInput" and "session's transaction" in r["error"], r
        r = c.call("copy_out", {"sql": "select 41 + 1 as x -- to the end"})
        assert decode(r)["rows"] == [[42]]
    assert not os.path.exists(path)
    assert pg.execute("select array_agg(id) from copy_ro2").fetchone()[0] == [1]
    assert pg.execute("select last_value, is_called from copy_seq").fetchone() == (1, False)


def test_copy_out_on_sqlite_says_not_supported(tmp_path):
    with Worker({"default": f"sqlite:{tmp_path}/c.db"}) as w:
        r = w.conn.call("copy_out", {"sql": "select 1"})
        assert r["status"] == "InvalidInput", r
        assert "copy_out is not supported on SQLite" in r["error"]


def test_copy_out_deadline_stops_the_server_query(pg):
    marker = "copy_out_deadline_marker"
    with Worker({"default": DSN}) as w:
        r = w.conn.call("copy_out", {"sql": f"select 1 as x from pg_sleep(30) /* {marker} */"}, timeout_ms=300)
        assert r["status"] == "Timeout", r
        deadline = time.monotonic() + 5
        while pg.execute("select count(*) from pg_stat_activity where query like %s and "
                         "pid <> pg_backend_pid()", (f"%{marker}%",)).fetchone()[0]:
            assert time.monotonic() < deadline, "the COPY still runs on the server"
            time.sleep(0.05)
        # the connection came back clean
        assert decode(w.conn.call("copy_out", {"sql": "select 5 as n"}))["rows"] == [[5]]
