"""MoltClient.listen and AsyncMoltClient.listen against the real worker and
PostgreSQL: notes with channel, payload and pid; the sync iterator's
timeout; ``async for``; notes again after a server restart."""
import asyncio
import os
import subprocess
import threading
import time

import pytest
from worker_client import NEEDS_PG_WORKER, pg_client_cmd

from molt_db_adapter import AsyncMoltClient, InvalidInput, MoltClient, Notification

DSN = os.environ.get("MOLT_TEST_DSN")
PGCTL = os.environ.get("MOLT_TEST_PGCTL")
pytestmark = [*NEEDS_PG_WORKER, pytest.mark.usefixtures("transport")]  # worker and in process
worker = pg_client_cmd


def test_sync_listener_gets_notes_and_its_iterator_times_out(pg):
    with MoltClient(worker()) as c:
        with c.listen("orders", "Audit Log", timeout=0.5) as listener:
            pid = pg.info.backend_pid
            pg.execute("select pg_notify('orders', 'o1'), pg_notify('Audit Log', 'a1')")
            assert listener.get(timeout=5) == Notification("orders", "o1", pid)
            assert listener.get(timeout=5) == Notification("Audit Log", "a1", pid)
            assert listener.get(timeout=0.2) is None
            pg.execute("select pg_notify('orders', 'o' || i) from generate_series(2, 4) i")
            t0 = time.monotonic()
            assert [n.payload for n in listener] == ["o2", "o3", "o4"]
            assert time.monotonic() - t0 < 3  # ended 0.5 s after the last note
            # queries on the same client go on meanwhile
            assert c.query("select 1").rows[0][0] == 1
        with pytest.raises(InvalidInput, match="closed"):
            listener.get(0)
        with pytest.raises(InvalidInput, match="1 to 63 bytes"):
            c.listen("x" * 64)


def test_async_for_gets_notes(pg):
    async def run():
        async with AsyncMoltClient(worker()) as c:
            got = []
            async with c.listen("jobs") as listener:
                threading.Timer(0.2, lambda: pg.execute(
                    "select pg_notify('jobs', 'j' || i) from generate_series(1, 3) i")).start()
                async for note in listener:
                    got.append(note.payload)
                    if len(got) == 3:
                        break
            # a bare async for with a timeout ends by itself
            ended = [n async for n in c.listen("quiet", timeout=0.3)]
            return got, ended, (await c.query("select 2")).rows[0][0]

    assert asyncio.run(run()) == (["j1", "j2", "j3"], [], 2)


@pytest.mark.skipif(not PGCTL, reason="MOLT_TEST_PGCTL is not set (run under scripts/with_pg.sh)")
def test_notes_after_a_server_restart():
    psycopg = pytest.importorskip("psycopg")
    with MoltClient(worker("--pool", "default:reconnect_max_ms=200")) as c:
        with c.listen("restart_ch") as listener:
            subprocess.run([PGCTL, "restart", "-m", "fast"], check=True, capture_output=True,
                           timeout=60)
            deadline = time.monotonic() + 30
            note = None
            with psycopg.connect(DSN, autocommit=True) as pg:
                # the worker LISTENs again after reconnecting; notify until a note comes
                while note is None:
                    assert time.monotonic() < deadline, "no note after the restart"
                    pg.execute("select pg_notify('restart_ch', 'back')")
                    note = listener.get(timeout=0.5)
                assert note.payload == "back" and note.pid == pg.info.backend_pid
            assert listener.reconnects == 1
