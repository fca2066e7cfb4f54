"""A statement of a transaction that times out or is interrupted, on both
transports (conftest's ``transport``) and a real PostgreSQL
(pg_stat_activity and the table are the oracle): the call raises on time,
not after the client's grace period; the statement is gone from the
server; the transaction stays the caller's, aborted, so a later statement
of it fails 25P02 instead of running outside any transaction; its rollback
leaves nothing. Blocking client (client timeout, the worker's deadline,
Ctrl-C) and asyncio client (client timeout, task cancelled)."""

import asyncio
import os
import signal
import threading
import time

import pytest

from molt_db_adapter import AsyncMoltClient, DbError, MoltClient, Timeout
from worker_client import WORKER_BIN

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)"),
    pytest.mark.usefixtures("transport"),  # on the worker and in process (conftest.py)
]

#: how long the interrupted call may take past its 0.5 s
_ON_TIME_S = 0.3


class _RollBack(Exception):
    """Raised in a transaction block to roll it back."""


@pytest.fixture
def table(pg):
    pg.execute("drop table if exists txc_items")
    pg.execute("create table txc_items(v int)")
    yield lambda: pg.execute("select count(*) from txc_items").fetchone()[0]
    pg.execute("drop table txc_items")


@pytest.fixture
def ctrl_c():
    """SIGINT raises KeyboardInterrupt, as in a terminal (a process started
    in the background inherits it ignored)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def cmd(*extra):
    return [WORKER_BIN, "--stdio", "--db", f"default={DSN}",
            "--pool", "default:allow_privileged_role=true", "--allow-write", "default", *extra]


def running(pg, marker):
    """The server's backends running a statement that contains ``marker``."""
    return pg.execute("select pid from pg_stat_activity where state = 'active' and "
                      "query like %s and pid <> pg_backend_pid()", (f"%{marker}%",)).fetchall()


def wait_gone(pg, marker, within):
    deadline = time.monotonic() + within
    while running(pg, marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    return running(pg, marker)


def assert_aborted(err):
    assert err.value.sqlstate == "25P02", err.value


@pytest.mark.parametrize("how", ["client_timeout", "timeout_ms", "keyboard_interrupt"])
def test_an_interrupted_statement_leaves_its_transaction_aborted_and_on_time(
        pg, table, transport, how, ctrl_c):
    marker = f"txc_{how}_{transport}"
    kw = {"client_timeout_s": 0.5} if how == "client_timeout" else {}
    with MoltClient(cmd(), **kw) as c:
        c.query("select 1")
        with pytest.raises(_RollBack):
            with c.transaction() as tx:
                tx.execute("insert into txc_items values (1)")
                if how == "keyboard_interrupt":
                    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
                t0 = time.monotonic()
                with pytest.raises(KeyboardInterrupt if how == "keyboard_interrupt" else Timeout):
                    tx.query(f"select pg_sleep(5) /* {marker} */",
                             **({"timeout_ms": 500} if how == "timeout_ms" else {}))
                took = time.monotonic() - t0
                assert took < 0.5 + _ON_TIME_S, f"raised after {took:.3f} s"
                if transport == "inprocess" and how != "timeout_ms":
                    # the call drove the host until its cancel was through
                    assert running(pg, marker) == []
                assert wait_gone(pg, marker, within=1.0) == []
                with pytest.raises(DbError) as err:
                    tx.execute("insert into txc_items values (2)")
                assert_aborted(err)
                raise _RollBack
        assert c.query("select 2").rows == [(2,)]
    assert table() == 0


def test_statements_after_a_cancel_in_a_transaction_never_run_outside_it(table):
    """Rounds: the query's end and the CancelRequest's outcome reach the
    pool in either order; in neither may the pool hand the transaction's
    connection back (a later insert would commit on its own)."""
    with MoltClient(cmd(), client_timeout_s=0.2) as c:
        for i in range(5):
            with pytest.raises(_RollBack):
                with c.transaction() as tx:
                    tx.execute("insert into txc_items values ($1)", [i])
                    with pytest.raises(Timeout):
                        tx.query("select pg_sleep(5)")
                    time.sleep(0.05)
                    with pytest.raises(DbError) as err:
                        tx.execute("insert into txc_items values ($1)", [-i])
                    assert_aborted(err)
                    raise _RollBack
    assert table() == 0


@pytest.mark.parametrize("how", ["client_timeout", "task_cancel"])
def test_async_an_interrupted_statement_leaves_its_transaction_aborted_and_on_time(
        pg, table, transport, how):
    marker = f"txc_async_{how}_{transport}"
    kw = {"client_timeout_s": 0.5} if how == "client_timeout" else {}

    async def gone():
        deadline = time.monotonic() + 1.0
        while running(pg, marker) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # the loop runs: so does an in-process host
        return running(pg, marker)

    async def main():
        async with AsyncMoltClient(cmd(), **kw) as ac:
            await ac.query("select 1")
            with pytest.raises(_RollBack):
                async with ac.transaction() as tx:
                    await tx.execute("insert into txc_items values (1)")
                    t0 = time.monotonic()
                    sql = f"select pg_sleep(5) /* {marker} */"
                    if how == "task_cancel":  # wait_for cancels the task
                        with pytest.raises(asyncio.TimeoutError):
                            await asyncio.wait_for(tx.query(sql), 0.5)
                    else:
                        with pytest.raises(Timeout):
                            await tx.query(sql)
                    took = time.monotonic() - t0
                    assert took < 0.5 + _ON_TIME_S, f"raised after {took:.3f} s"
                    assert await gone() == []
                    with pytest.raises(DbError) as err:
                        await tx.execute("insert into txc_items values (2)")
                    assert_aborted(err)
                    raise _RollBack
            return (await ac.query("select 2")).rows

    assert asyncio.run(main()) == [(2,)]
    assert table() == 0
