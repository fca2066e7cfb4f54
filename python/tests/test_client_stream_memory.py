"""Streams in bounded memory, on both transports (conftest.py's transport
fixture), blocking and asyncio, against real PostgreSQL.

A reader slower than the server: each test stops reading for a while
after the first row, long enough for the server to send most of the
result, then reads on. The client's RSS, and on the worker transport the
worker's too, must stay within a bound of where they were at the first
row: the client holds at most its flow control's share of a stream
(flow.py, 4 MiB unread) and the worker or host pauses the query once
8 MiB are unread (docs/worker.md). Holding the rest instead would take
well over the bound. The flow control stops taking frames only while
nothing but full streams waits: a query made on the same client while
the stream waits unread is answered at once. Every row must still come,
in order."""

import asyncio
import os
import threading
import time

import pytest

from molt_db_adapter import AsyncMoltClient, MoltClient, WorkerUnavailable
from worker_client import NEEDS_PG_WORKER, pg_client_cmd

pytestmark = [pytest.mark.usefixtures("transport"), *NEEDS_PG_WORKER]

# after the first row, more than the server can send during the stall
ROWS = 3_000_000
ASYNC_ROWS = 2_000_000
# measured 12-20 MiB; a client holding what the server sent during the
# stall grows by 40-80 MiB
STREAM_RSS_BOUND = 36 * 1024 * 1024
SAMPLE_EVERY = 100_000
STALL_S = 2.0  # the reader away: the server could send 2M rows meanwhile


def stream_sql(rows):
    return f"select g, 'row-' || g as t, g * 0.25 as f from generate_series(1, {rows}) g"


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


class Growth:
    """Peak RSS growth of the client's process and the worker's (the same
    process for the in-process client) over their RSS at the first row."""

    def __init__(self, worker_pid):
        self.pids = sorted({os.getpid(), worker_pid or os.getpid()})
        self.base = {p: rss_bytes(p) for p in self.pids}
        self.peak = dict(self.base)

    def sample(self):
        for p in self.pids:
            self.peak[p] = max(self.peak[p], rss_bytes(p))

    def check(self, bound):
        growth = {p: self.peak[p] - self.base[p] for p in self.pids}
        assert all(v < bound for v in growth.values()), growth


def answered_promptly(query):
    start = time.monotonic()
    assert query().rows == [(42,)]
    assert time.monotonic() - start < 5


def test_streaming_3m_rows_read_slowly_stays_in_bounded_memory():
    with MoltClient(pg_client_cmd("--max-rows", str(ROWS))) as c:
        c.ping()
        n = total = 0
        # a listener open on the client meanwhile does not count as waiting
        with c.listen("stream_memory"), \
                c.stream(stream_sql(ROWS), max_rows=ROWS, timeout_ms=120_000) as s:
            for g, t, f in s:
                n += 1
                total += g
                if n == 1:
                    growth = Growth(c.worker_pid)
                    assert (g, t, f) == (1, "row-1", "0.25")
                    time.sleep(STALL_S)
                    growth.sample()
                    answered_promptly(lambda: c.query("select 41 + 1 as x", timeout_ms=10_000))
                elif n % SAMPLE_EVERY == 0:
                    assert g == n
                    growth.sample()
    assert n == ROWS and total == ROWS * (ROWS + 1) // 2
    growth.check(STREAM_RSS_BOUND)


def test_an_async_stream_read_slowly_stays_in_bounded_memory():
    async def run():
        async with AsyncMoltClient(pg_client_cmd("--max-rows", str(ASYNC_ROWS))) as c:
            await c.ping()
            n = total = 0
            async with c.stream(stream_sql(ASYNC_ROWS), max_rows=ASYNC_ROWS, timeout_ms=120_000) as s:
                async for g, t, f in s:
                    n += 1
                    total += g
                    if n == 1:
                        # a query in flight while the stream fills is answered,
                        # not left behind the paused stream (frames flow while
                        # it waits: the growth is measured from its answer on)
                        slow = c.query("select 42 as x from pg_sleep(1)")
                        assert (await asyncio.wait_for(slow, 3)).rows == [(42,)]
                        growth = Growth(c.worker_pid)
                        await asyncio.sleep(STALL_S)  # the loop runs on: its reader too
                        growth.sample()
                        start = time.monotonic()
                        answer = await c.query("select 41 + 1 as x", timeout_ms=10_000)
                        assert answer.rows == [(42,)] and time.monotonic() - start < 5
                    elif n % SAMPLE_EVERY == 0:
                        assert g == n
                        growth.sample()
            return n, total, growth

    n, total, growth = asyncio.run(run())
    assert n == ASYNC_ROWS and total == ASYNC_ROWS * (ASYNC_ROWS + 1) // 2
    growth.check(STREAM_RSS_BOUND)


def test_a_reader_taking_a_part_at_a_time_keeps_its_session(transport):
    """Each part the reader takes lets the next one in: the worker (or
    host) sees the client read, so a reader slower than the server but
    steady keeps its session past write_timeout_ms (1 s here). A reader
    that then stops for longer loses it, as any client that stops reading:
    the stream raises WorkerUnavailable, and the client works on (a new
    connection, or a new in-process host; the in-process client finds the
    loss before its next call leaves, so even an execute goes through)."""
    rows = 1_000_000
    cmd = pg_client_cmd("--allow-write", "default", "--max-rows", str(rows), "--write-timeout-ms", "1000")
    with MoltClient(cmd) as c:
        with c.stream(stream_sql(rows), max_rows=rows, batch_rows=8192, timeout_ms=60_000) as s:
            parts = s.chunks()
            next(parts)
            time.sleep(0.5)  # the server gets ahead: the stream is full, paused
            for _ in range(8):  # 1.6 s, a part every 0.2 s
                next(parts)
                time.sleep(0.2)
            assert c.query("select 41 + 1 as x").rows == [(42,)]
            time.sleep(2.2)  # away: the session is closed under the stream
            if transport == "inprocess":
                assert c.execute("select 1").rows_affected is not None
            with pytest.raises(WorkerUnavailable):
                for _ in parts:
                    pass
        assert c.query("select 41 + 1 as x").rows == [(42,)]


def test_a_thread_waiting_on_a_listener_does_not_stall_a_stream():
    """A thread blocked on a listener of the same client drives the
    in-process host with a long wait; a stream read by another thread
    still gets each part as its reader takes the one before (the reader
    kicks the driving thread out of its wait): no gap of a second, no
    session lost (write_timeout_ms 2 s; without the kick the gap lasts
    until the listener's own timeout, 30 s)."""
    rows = 500_000
    cmd = pg_client_cmd("--allow-write", "default", "--max-rows", str(rows), "--write-timeout-ms", "2000")
    with MoltClient(cmd) as c:
        with c.listen("stream_memory_stall") as listener:
            waiter = threading.Thread(target=listener.get, args=(30,), daemon=True)
            waiter.start()
            with c.stream(stream_sql(rows), max_rows=rows, batch_rows=8192, timeout_ms=60_000) as s:
                parts = s.chunks()
                n = len(s.rows_of(next(parts)))
                time.sleep(0.5)  # full and held while the other thread waits
                longest = 0.0
                while True:
                    start = time.monotonic()
                    part = next(parts, None)
                    if part is None:
                        break
                    longest = max(longest, time.monotonic() - start)
                    n += len(s.rows_of(part))
            c.execute("select pg_notify('stream_memory_stall', 'done')")
            waiter.join(10)
    assert not waiter.is_alive()
    assert n == rows and longest < 1.0, (n, longest)
