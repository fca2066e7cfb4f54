"""MoltClient.copy_in / copy_out and AsyncMoltClient's, against the real
worker and PostgreSQL: rows and a pyarrow.Table in, rows and Arrow out, a
read-only client refused with the table unchanged."""
import asyncio
import datetime
import decimal
import os
import uuid

import pytest
from worker_client import NEEDS_PG_WORKER, pg_client_cmd

from molt_db_adapter import AsyncMoltClient, DbError, InvalidInput, MoltClient

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = [*NEEDS_PG_WORKER, pytest.mark.usefixtures("transport")]  # worker and in process
worker = pg_client_cmd


ROWS = [
    (1, "plain", decimal.Decimal("1.10"), datetime.datetime(2024, 5, 6, 7, 8, 9,
                                                            tzinfo=datetime.timezone.utc),
     uuid.UUID(int=5), [1, None, 3], b"\x00\xff", None),
    (2, "tab\tnew\nline \\N", None, None, None, [], b"", {"ignored": "no"}.get("x")),
]


def test_copy_in_rows_and_arrow_then_copy_out(pg):
    pa = pytest.importorskip("pyarrow")
    pg.execute("drop table if exists client_copy")
    pg.execute("create table client_copy (id int8, t text, n numeric, ts timestamptz, u uuid, "
               "a int4[], b bytea, z text)")
    with MoltClient(worker("--allow-write", "default")) as c:
        assert c.copy_in("client_copy", ROWS) == 2
        assert c.copy_in("client_copy", []) == 0
        arrow = pa.table({"id": pa.array([3, 4], pa.int64()), "t": ["x", None],
                          "a": pa.array([[7], None], pa.list_(pa.int32()))})
        assert c.copy_in(("public", "client_copy"), arrow) == 2
        got = c.copy_out("select id, t, n, ts, u, a, b, z from client_copy order by id")
        assert got.rows[0][:3] == (1, "plain", "1.10") or list(got.rows[0][:3]) == [1, "plain", "1.10"]
        assert list(got.rows[1][:2]) == [2, "tab\tnew\nline \\N"]
        assert [r[0] for r in got.rows] == [1, 2, 3, 4]
        assert list(got.rows[2][5]) == [7] and got.rows[3][5] is None
        table = c.copy_out("select id, t from client_copy order by id",
                           result_format="arrow_ipc").to_arrow()
        assert table.column("t").to_pylist() == ["plain", "tab\tnew\nline \\N", "x", None]
        with pytest.raises(InvalidInput, match=r"rows\[0\]\[0\]"):
            c.copy_in("client_copy", [[object()]])
        with pytest.raises(DbError) as e:
            c.copy_in("client_copy", [[5, "ok"], ["not an int", "bad"]], columns=["id", "t"])
        assert e.value.sqlstate == "22P02"
    assert pg.execute("select count(*) from client_copy").fetchone()[0] == 4


def test_read_only_client_cannot_copy_in(pg):
    pg.execute("drop table if exists client_copy_ro")
    pg.execute("create table client_copy_ro (id int)")
    with MoltClient(worker()) as c:
        with pytest.raises(InvalidInput, match="does not grant db.write"):
            c.copy_in("client_copy_ro", [[1]])
        assert c.copy_out("select 2 as x").rows[0][0] == 2
    assert pg.execute("select count(*) from client_copy_ro").fetchone()[0] == 0


def test_async_copy_in_and_out(pg):
    pg.execute("drop table if exists client_copy_async")
    pg.execute("create table client_copy_async (id int8, t text)")

    async def run():
        async with AsyncMoltClient(worker("--allow-write", "default")) as c:
            n = await c.copy_in("client_copy_async", [(i, f"r{i}") for i in range(1000)])
            res = await c.copy_out("select count(*), sum(id)::int8 from client_copy_async")
            return n, list(res.rows[0])

    assert asyncio.run(run()) == (1000, [1000, 499500])
