"""molt_db_adapter's transactions (client.transaction(), aclient.transaction())
against the real worker, on a real PostgreSQL (psycopg on MOLT_TEST_DSN is
the oracle for what the server holds) and a real SQLite file: commit on
normal exit, rollback on an exception, savepoints by nesting, a locking
read-modify-write from two threads without a lost update, a read-only
alias, streams, a client closed and a worker that dies mid-transaction.
Each runs on both transports (conftest's ``transport``): an in-process
client holds one host session, as a worker client holds one connection."""

import asyncio
import os
import signal
import sqlite3
import threading

import pytest

from molt_db_adapter import (
    AsyncMoltClient, DbError, InvalidInput, MoltClient, WorkerUnavailable,
)
from worker_client import WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.usefixtures("transport"),  # on the worker and in process (conftest.py)
]


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request, tmp_path):
    """(worker --db value, a function returning the table's values as the
    database itself holds them)."""
    if request.param == "postgresql":
        if not DSN:
            pytest.skip("MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)")
        psycopg = pytest.importorskip("psycopg")
        with psycopg.connect(DSN, autocommit=True) as con:
            con.execute("drop table if exists ctx_items")
            con.execute("create table ctx_items(id int primary key, v int not null)")
            con.execute("insert into ctx_items values (1, 0)")

        def held():
            with psycopg.connect(DSN, autocommit=True) as con:
                return con.execute("select id, v from ctx_items order by id").fetchall()
        return DSN, held
    path = tmp_path / "ctx.db"
    con = sqlite3.connect(path)
    con.executescript("create table ctx_items(id integer primary key, v int not null);"
                      "insert into ctx_items values (1, 0);")
    con.commit()
    con.close()

    def held_sqlite():
        c = sqlite3.connect(path)
        try:
            return c.execute("select id, v from ctx_items order by id").fetchall()
        finally:
            c.close()
    return f"sqlite://{path}", held_sqlite


def cmd(dsn, *extra, write=True):
    args = [WORKER_BIN, "--stdio", "--db", f"default={dsn}"]
    if not dsn.startswith("sqlite"):
        args += ["--pool", "default:allow_privileged_role=true"]
    if write:
        args += ["--allow-write", "default"]
    return args + list(extra)


def test_commit_on_exit_rollback_on_exception(db):
    dsn, held = db
    with MoltClient(cmd(dsn)) as c:
        with c.transaction() as tx:
            tx.execute("insert into ctx_items values (2, 20)")
            assert tx.query("select v from ctx_items where id = 2").rows == [(20,)]
            assert held() == [(1, 0)]          # not committed yet
        assert held() == [(1, 0), (2, 20)]
        with pytest.raises(ZeroDivisionError):
            with c.transaction() as tx:
                tx.execute("insert into ctx_items values (3, 30)")
                1 / 0
        assert held() == [(1, 0), (2, 20)]
        # an error from the database rolls back too, and is raised as itself
        with pytest.raises(DbError) as e:
            with c.transaction() as tx:
                tx.execute("insert into ctx_items values (4, 40)")
                tx.execute("insert into ctx_items values (4, 41)")
        assert e.value.sqlstate == "23505"
        assert held() == [(1, 0), (2, 20)]
        assert c.stats()["worker"]["transactions"] == 0


def test_savepoints_by_nesting(db):
    dsn, held = db
    with MoltClient(cmd(dsn)) as c:
        with c.transaction() as tx:
            tx.execute("insert into ctx_items values (2, 2)")
            with pytest.raises(RuntimeError):
                with tx.transaction() as sp:
                    sp.execute("insert into ctx_items values (3, 3)")
                    raise RuntimeError("undo the savepoint only")
            with tx.transaction():
                tx.execute("insert into ctx_items values (4, 4)")
                with tx.transaction():
                    tx.execute("insert into ctx_items values (5, 5)")
            # an error inside a savepoint: rolled back to it, the rest goes on
            with pytest.raises(DbError):
                with tx.transaction():
                    tx.execute("insert into ctx_items values (2, 99)")
            tx.execute("update ctx_items set v = v + 100 where id = 1")
        assert held() == [(1, 100), (2, 2), (4, 4), (5, 5)]


def test_scopes_end_innermost_first(db):
    dsn, held = db
    with MoltClient(cmd(dsn)) as c:
        tx = c.transaction().__enter__()
        sp = tx.transaction().__enter__()
        with pytest.raises(InvalidInput, match="innermost"):
            tx.commit()
        sp.rollback()
        tx.commit()
        with pytest.raises(InvalidInput, match="ended"):
            tx.query("select 1")
        with pytest.raises(InvalidInput, match="transaction's"):
            with c.transaction() as t2:
                t2.query("select 1", db_alias="other")


def test_stream_in_a_transaction(db):
    dsn, held = db
    with MoltClient(cmd(dsn)) as c:
        with c.transaction() as tx:
            tx.executemany("insert into ctx_items values ($1, $2)", [(i, i) for i in range(2, 2002)])
            with tx.stream("select id from ctx_items order by id", batch_rows=100) as s:
                ids = [r[0] for r in s]
            assert ids == list(range(1, 2002))
            tx.rollback()
        assert held() == [(1, 0)]


def test_locking_read_modify_write_from_two_threads_loses_no_update(db):
    """SELECT ... FOR UPDATE (a locking read is tx.execute: db_query reads
    only), decide, UPDATE: 2 x 25 increments land (PostgreSQL row lock;
    SQLite: BEGIN IMMEDIATE serializes the writers)."""
    dsn, held = db
    lock = "" if dsn.startswith("sqlite") else " for update"
    errors = []

    def worker():
        try:
            with MoltClient(cmd(dsn, "--pool", "default:sqlite_busy_timeout_ms=10000")
                            if dsn.startswith("sqlite") else cmd(dsn)) as c:
                for _ in range(25):
                    with c.transaction() as tx:
                        v = tx.execute("select v from ctx_items where id = 1" + lock).rows[0][0]
                        tx.execute("update ctx_items set v = $1 where id = 1", [v + 1])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert held() == [(1, 50)]


def test_read_only_alias_gets_a_read_only_transaction(db):
    dsn, held = db
    with MoltClient(cmd(dsn, write=False)) as c:
        with c.transaction(read_only=False) as tx:
            assert tx.read_only is True
            assert tx.query("select v from ctx_items").rows == [(0,)]
            with pytest.raises(InvalidInput, match="db.write"):
                tx.execute("update ctx_items set v = 5")
        with pytest.raises(DbError) as e:
            with c.transaction() as tx:
                tx.query("update ctx_items set v = 6")
        assert e.value.sqlstate == "25006"
    assert held() == [(1, 0)]


def test_closing_the_client_mid_transaction_rolls_it_back(db):
    """The client's session ends with it: what its open transaction wrote
    is gone from the database and the row it locked is free for another
    client (a lock left behind would make that update wait and fail)."""
    dsn, held = db
    c = MoltClient(cmd(dsn))
    tx = c.transaction().__enter__()
    tx.execute("update ctx_items set v = 99 where id = 1")
    tx.execute("insert into ctx_items values (6, 6)")
    c.close()
    assert held() == [(1, 0)]
    with MoltClient(cmd(dsn)) as other:
        with other.transaction() as t2:
            t2.execute("update ctx_items set v = 1 where id = 1", timeout_ms=5000)
    assert held() == [(1, 1)]


def test_two_clients_are_two_sessions(db):
    """A transaction's id belongs to the session (client) that began it:
    another client cannot write through it."""
    dsn, held = db
    with MoltClient(cmd(dsn)) as a, MoltClient(cmd(dsn)) as b:
        with a.transaction() as tx:
            tx.execute("insert into ctx_items values (2, 2)")
            with pytest.raises(InvalidInput):
                b.execute("insert into ctx_items values (3, 3)", tx_id=tx.id)
        assert held() == [(1, 0), (2, 2)]


@pytest.mark.worker_only("kills the worker process")
def test_a_worker_that_dies_mid_transaction_is_not_resent_to(db):
    dsn, held = db
    with MoltClient(cmd(dsn)) as c:
        tx = c.transaction().__enter__()
        tx.execute("insert into ctx_items values (7, 7)")
        os.kill(c.worker_pid, signal.SIGKILL)
        with pytest.raises(WorkerUnavailable):
            tx.query("select 1")
        # the next transaction is a fresh one on the restarted worker
        with c.transaction() as tx2:
            assert tx2.id != tx.id
            tx2.execute("insert into ctx_items values (8, 8)")
    assert held() == [(1, 0), (8, 8)]


def test_async_transactions(db):
    dsn, held = db

    async def main():
        async with AsyncMoltClient(cmd(dsn)) as ac:
            async with ac.transaction(isolation="serializable") as tx:
                await tx.execute("insert into ctx_items values (2, 2)")
                async with tx.transaction():
                    await tx.execute("insert into ctx_items values (3, 3)")
                try:
                    async with tx.transaction():
                        await tx.execute("insert into ctx_items values (4, 4)")
                        raise KeyError("inner")
                except KeyError:
                    pass
                assert (await tx.query("select count(*) from ctx_items")).rows == [(3,)]
                async with tx.stream("select id from ctx_items order by id") as s:
                    assert [r[0] async for r in s] == [1, 2, 3]
            try:
                async with ac.transaction() as tx:
                    await tx.execute("insert into ctx_items values (9, 9)")
                    raise ValueError("roll back")
            except ValueError:
                pass
            return (await ac.stats())["worker"]["transactions"]

    assert asyncio.run(main()) == 0
    assert held() == [(1, 0), (2, 2), (3, 3)]
