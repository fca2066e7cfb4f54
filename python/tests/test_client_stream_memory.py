"""Streaming 5M rows from real PostgreSQL stays in bounded memory, on both
transports (conftest.py's transport fixture): the client's RSS, and on the
worker transport the worker's too, are sampled while every row is
consumed and must stay within STREAM_RSS_BOUND of where they were when the
first row arrived. Holding the rows (or the frames) would take over 600 MB;
the bound is what the backpressure allows (docs/worker.md: a session with
8 MiB of responses unread is paused) plus a few batches and the
allocator's slack. Also a check that every row came, in order."""

import os

import pytest

from molt_db_adapter import MoltClient
from worker_client import NEEDS_PG_WORKER, pg_client_cmd

pytestmark = [pytest.mark.usefixtures("transport"), *NEEDS_PG_WORKER]

ROWS = 5_000_000
STREAM_SQL = f"select g, 'row-' || g as t, g * 0.25 as f from generate_series(1, {ROWS}) g"
STREAM_RSS_BOUND = 64 * 1024 * 1024
SAMPLE_EVERY = 100_000


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def test_streaming_5m_rows_stays_in_bounded_memory():
    with MoltClient(pg_client_cmd("--max-rows", str(ROWS))) as c:
        c.ping()
        # the worker's process, or this one for the in-process client
        pids = sorted({os.getpid(), c.worker_pid})
        base, peak = {}, {}
        n = total = 0
        with c.stream(STREAM_SQL, max_rows=ROWS, timeout_ms=120_000) as s:
            for g, t, f in s:
                n += 1
                total += g
                if n == 1:
                    base = {p: rss_bytes(p) for p in pids}
                    peak = dict(base)
                    assert (g, t, f) == (1, "row-1", "0.25")
                elif n % SAMPLE_EVERY == 0:
                    assert g == n
                    for p in pids:
                        peak[p] = max(peak[p], rss_bytes(p))
    assert n == ROWS and total == ROWS * (ROWS + 1) // 2
    growth = {p: peak[p] - base[p] for p in pids}
    assert all(v < STREAM_RSS_BOUND for v in growth.values()), growth
