"""What only the in-process clients have (the rest of their API runs in the
client suites, on both transports: conftest.py's transport fixture):
cancellation checked on the server, fork(), memory over many calls,
hostile arguments, host sessions, close."""
import asyncio
import os
import resource
import signal
import sqlite3
import threading
import time

import pytest

from molt_db_adapter import (
    AsyncInProcessClient,
    Cancelled,
    DbError,
    InProcessClient,
    InvalidInput,
    Timeout,
    WorkerStartError,
    WorkerUnavailable,
)

from molt_db_adapter.envelope import (
    decode_response, encode_request, tx_begin_payload, unpackb,
)
from molt_db_adapter.envelope import exec_payload as exec_p
from molt_db_adapter.envelope import (
    query_payload as query_p,
)

_host = pytest.importorskip("molt_db_adapter._host", reason="molt_db_adapter._host is not built")

DSN = os.environ.get("MOLT_TEST_DSN")


def pg_args(*extra):
    return ["--db", f"default={DSN}", "--pool", "default:allow_privileged_role=true", *extra]


def sqlite_args(path):
    return ["--db", f"default=sqlite:///{path}", "--allow-write", "default"]


def running(pg, marker):
    """The server's backends running a query that contains ``marker``."""
    rows = pg.execute(
        "select pid from pg_stat_activity where query like %s and pid <> pg_backend_pid()",
        (f"%{marker}%",)).fetchall()
    return [r[0] for r in rows]


def wait_gone(pg, marker, within=3.0):
    deadline = time.monotonic() + within
    while running(pg, marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running(pg, marker)


def wait_running(pg, marker, within=5.0):
    deadline = time.monotonic() + within
    while not running(pg, marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running(pg, marker), "the query never started on the server"


# ---- cancellation reaches the server ----

@pytest.fixture
def ctrl_c():
    """SIGINT raises KeyboardInterrupt, as in a terminal: a process started
    in the background (make test under with_pg.sh) inherits it ignored."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.mark.parametrize("how", ["keyboard_interrupt", "client_timeout"])
def test_sync_interrupt_cancels_the_server_query(pg, how, ctrl_c):
    if not DSN:
        pytest.skip("MOLT_TEST_DSN is not set")
    marker = f"inproc_cancel_{how}"
    kw = {"client_timeout_s": 0.5} if how == "client_timeout" else {}
    with InProcessClient(pg_args(), **kw) as c:
        assert c.query("select 1").rows == [(1,)]
        if how == "keyboard_interrupt":
            # SIGINT while this (main) thread waits inside the host wait,
            # without the GIL
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
            expected = KeyboardInterrupt
        else:
            expected = Timeout
        t0 = time.monotonic()
        with pytest.raises(expected):
            c.query(f"select pg_sleep(30) /* {marker} */")
        assert time.monotonic() - t0 < 3
        # the call drove the host until the cancel took effect: the query
        # (and the read-only transaction around it) ended before it raised
        assert running(pg, marker) == []
        assert c.query("select 2").rows == [(2,)]  # the client still works


@pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set")
@pytest.mark.parametrize("client", ["sync", "async"])
def test_the_hosts_own_deadline_cancels_the_server_query_without_another_call(pg, client):
    """timeout_ms: the host answers Timeout at the deadline and cancels the
    query on the server; nobody makes another call, so the CancelRequest's
    I/O is driven by the keeper thread (blocking client) or the event loop
    (asyncio client), as a worker's own loop would."""
    marker = f"inproc_deadline_{client}"
    sql = f"select pg_sleep(30) /* {marker} */"
    if client == "sync":
        with InProcessClient(pg_args()) as c:
            c.query("select 1")
            with pytest.raises(Timeout):
                c.query(sql, timeout_ms=300)
            assert wait_gone(pg, marker, within=1.5) == []
    else:
        async def main():
            async with AsyncInProcessClient(pg_args()) as c:
                await c.query("select 1")
                with pytest.raises(Timeout):
                    await c.query(sql, timeout_ms=300)
                deadline = time.monotonic() + 1.5
                while running(pg, marker) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)  # the loop runs: so does the host
                assert running(pg, marker) == []

        asyncio.run(main())


@pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set")
def test_threads_share_a_blocking_client_whose_host_they_drive(pg):
    """The blocking client's host is driven by the threads in a call (no
    loop thread): 8 threads sharing it each get their own answers, and once
    nothing is pending no thread of the client's is left."""
    with InProcessClient(pg_args("--pool", "default:max_conns=2")) as c:
        assert c.query("select 1").rows == [(1,)]
        assert c._conn.host.driven
        got: dict[int, list[int]] = {}

        def work(k):
            got[k] = [c.query("select $1::int8", [k * 1000 + i]).rows[0][0] for i in range(40)]

        ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        assert got == {k: [k * 1000 + i for i in range(40)] for k in range(8)}
        deadline = time.monotonic() + 5
        while any(t.name == "molt-db-host-keeper" for t in threading.enumerate()):
            assert time.monotonic() < deadline, "the keeper outlived the pending work"
            time.sleep(0.05)
        assert c._conn.host.pending() == 0


def test_async_task_cancel_cancels_the_server_query(pg):
    if not DSN:
        pytest.skip("MOLT_TEST_DSN is not set")
    marker = "inproc_cancel_task"

    async def main():
        async with AsyncInProcessClient(pg_args()) as c:
            task = asyncio.create_task(c.query(f"select pg_sleep(30) /* {marker} */"))
            await asyncio.sleep(0.2)
            await asyncio.get_running_loop().run_in_executor(None, wait_running, pg, marker)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gone = await asyncio.get_running_loop().run_in_executor(None, wait_gone, pg, marker)
            assert gone == []
            return (await c.query("select 3")).rows

    assert asyncio.run(main()) == [(3,)]


def test_releasing_a_stream_early_cancels_the_server_query(pg):
    if not DSN:
        pytest.skip("MOLT_TEST_DSN is not set")
    marker = "inproc_stream_close"
    with InProcessClient(pg_args()) as c:
        # rows of 10 kB: the server sends each at once (a small row waits
        # in its 8 kB output buffer)
        s = c.stream(f"select g, repeat('x', 10000), pg_sleep(0.01) /* {marker} */ "
                     "from generate_series(1, 100000) g", batch_rows=10)
        first = next(iter(s))
        assert first[0] == 1
        assert running(pg, marker)
        s.close()
        assert wait_gone(pg, marker) == []


def test_close_with_a_query_in_flight_ends_the_waiting_thread(pg, tmp_path):
    if not DSN:
        pytest.skip("MOLT_TEST_DSN is not set")
    marker = "inproc_close_in_flight"
    c = InProcessClient(pg_args(), max_restarts=0)
    c.ping()
    errors = []

    def waiter():
        try:
            c.query(f"select pg_sleep(30) /* {marker} */")
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    wait_running(pg, marker)
    c.close()
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], (WorkerUnavailable, Cancelled)), errors
    assert wait_gone(pg, marker) == []
    with pytest.raises(WorkerUnavailable):
        c.query("select 1")


# ---- fork() ----

def in_child(fn):
    """(pid, what fn returned) with fn run in a forked child, which never
    returns into pytest; fails with what the child raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.write(w, fn().encode())
            code = 0
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(w, f"error {e!r}".encode())
        finally:
            os._exit(code)
    os.close(w)
    report = os.read(r, 4096).decode()
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, report
    return pid, report


@pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set")
def test_fork_child_gets_its_own_host_and_connections(pg):
    with InProcessClient(pg_args()) as c:
        parent_backend = c.query("select pg_backend_pid()").rows[0][0]
        def child():
            got = c.query("select pg_backend_pid(), 40 + 2").rows[0]
            ping = c.ping()["pid"]
            c.close()
            return f"{got[0]} {got[1]} {ping}"

        pid, report = in_child(child)
        child_backend, answer, child_ping = (int(x) for x in report.split())
        assert answer == 42
        assert child_ping == pid  # the child's own host answered
        assert child_backend != parent_backend  # a connection of its own
        # the parent's connection survived the child (no Terminate, no
        # bytes of the child's on it): the same backend answers
        for _ in range(3):
            assert c.query("select pg_backend_pid()").rows[0][0] == parent_backend
        assert parent_backend in [r[0] for r in pg.execute("select pid from pg_stat_activity").fetchall()]


def test_fork_async_client_in_the_child(tmp_path):
    path = tmp_path / "f.db"
    args = sqlite_args(path)

    async def use(c, v):
        return (await c.query("select $1 + 1", [v])).rows[0][0]

    c = AsyncInProcessClient(args)
    try:
        assert asyncio.run(use(c, 1)) == 2
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = 0 if asyncio.run(use(c, 41)) == 42 else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
    finally:
        asyncio.run(c.close())


# ---- memory ----

def _rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (resource.getpagesize() // 1024)


def test_many_calls_leave_rss_flat(tmp_path):
    """5 * 10^4 calls (sync and asyncio, answers and errors): RSS after the
    second half within 4 MiB of after the first (168 bytes a call)."""
    args = sqlite_args(tmp_path / "leak.db")

    async def burst(ac, n):
        for _ in range(n // 500):
            await asyncio.gather(*[ac.query("select $1", [i]) for i in range(500)])

    with InProcessClient(args) as c:
        c.execute("create table t (a int)")

        async def run(n):
            async with AsyncInProcessClient(args) as ac:
                await burst(ac, n)

        def round_(n):
            for i in range(n // 10):
                c.query("select $1", [i])
                if i % 100 == 0:
                    with pytest.raises(Exception):
                        c.query("select nope")
            asyncio.run(run(n - n // 10))

        round_(25_000)
        before = _rss_kib()
        round_(25_000)
        after = _rss_kib()
    assert after - before < 4 * 1024, (before, after)


# ---- hostile arguments, what is not supported ----

def test_bad_arguments_are_refused():
    with pytest.raises(WorkerStartError, match="unknown option"):
        InProcessClient(["--bogus"]).ping()
    with pytest.raises(WorkerStartError):
        InProcessClient(["--stdio", "--db", "default=sqlite:///:memory:"]).ping()
    with pytest.raises(WorkerStartError):
        InProcessClient(["--db", "default=mysql://x@h/db"]).ping()
    with pytest.raises(InvalidInput):
        InProcessClient("--db default=sqlite:///:memory:")
    with pytest.raises(InvalidInput):
        InProcessClient(["--db", b"default=sqlite:///:memory:"])
    with pytest.raises(InvalidInput):
        InProcessClient(["--db", "default=sqlite:///:memory:"], socket_path="/tmp/x")
    with pytest.raises(ValueError, match="NUL"):
        _host.Host(["--db", "default=sqlite:///x\0y"])


def test_read_only_alias_cannot_write_and_the_file_is_unchanged(tmp_path):
    path = tmp_path / "ro.db"
    with InProcessClient(sqlite_args(path)) as w:
        w.execute("create table t (a int)")
        w.execute("insert into t values (1)")
    with InProcessClient(["--db", f"default=sqlite:///{path}"]) as c:
        with pytest.raises(Exception):
            c.execute("insert into t values (2)")
        with pytest.raises(Exception):
            c.query("delete from t")
        assert c.query("select a from t").rows == [(1,)]


def frames_of(h, s):
    """Every frame of stream ``s`` of host ``h`` (within 5 s); released."""
    frames = []
    deadline = time.monotonic() + 5
    while not s.done and time.monotonic() < deadline:
        frames += s.take()
        if not s.done:
            h.news(0.5)
    s.release()
    return frames


def test_malformed_envelopes_are_frames_not_crashes():
    h = _host.Host(["--db", "default=sqlite:///:memory:"])
    try:
        for junk in (b"", b"\xc1", b"\x81\xa1x" + b"\xff" * 100, b"\x92" * 5000):
            frames = frames_of(h, h.submit(junk))
            assert len(frames) == 1 and b"InvalidInput" in frames[0]
    finally:
        h.close()
    with pytest.raises(_host.HostError):
        h.submit(b"\x80")


def _answer(h, request, session):
    """The one response of ``request`` submitted to ``h`` in ``session``."""
    frames = frames_of(h, h.submit(request, session=session))
    assert len(frames) == 1
    return decode_response(frames[0])


def test_a_session_not_open_is_refused_and_a_closed_one_rolls_back(tmp_path):
    """Host sessions as a hostile caller uses them: a guessed id and a
    closed session get InvalidInput, and closing a session with an open
    transaction leaves the file without its writes."""
    path = tmp_path / "s.db"
    h = _host.Host(sqlite_args(path))
    try:
        def req(rid, entry, payload):
            return encode_request(rid, entry, payload)[4:]

        def query_payload(sql, params, alias):
            return query_p(sql, params, db_alias=alias, result_format="msgpack", max_rows=None,
                           tag=None)

        def exec_payload(sql, params, alias):
            return exec_p(sql, params, db_alias=alias, result_format="msgpack", tag=None)

        guessed = _answer(h, req(1, "db_query", query_payload("select 1", None, "default")), 12345)
        assert guessed.status == "InvalidInput" and "session" in (guessed.error or "")
        sid = h.session_open()
        assert sid != 0 and h.session_open() != sid
        ok = _answer(h, req(1, "db_exec", exec_payload("create table t(v int)", None, "default")), sid)
        assert ok.status == "Ok"
        begun = _answer(h, req(2, "tx_begin", tx_begin_payload(
            db_alias="default", isolation=None, read_only=False, deferrable=False)), sid)
        assert begun.status == "Ok"
        tx_id = unpackb(begun.payload)["tx_id"]
        insert = exec_payload("insert into t values (7)", None, "default")
        insert["tx_id"] = tx_id
        assert _answer(h, req(3, "db_exec", insert), sid).status == "Ok"
        # another session cannot use that transaction
        other = h.session_open()
        assert _answer(h, req(1, "db_exec", insert), other).status == "InvalidInput"
        h.session_close(sid)
        assert _answer(h, req(4, "db_query", query_payload("select 1", None, "default")),
                       sid).status == "InvalidInput"
        with pytest.raises(ValueError):
            h.session_close(sid)
    finally:
        h.close()
    con = sqlite3.connect(path)
    try:
        assert con.execute("select count(*) from t").fetchone() == (0,)
    finally:
        con.close()


def test_a_driven_host_waiting_in_news_runs_a_submit_from_another_thread():
    """Driven, the thread in news() runs the host's loop, waiting in it
    without the GIL: a submit from another thread ends that wait (the
    host's own wake-up), so the answer comes long before news()'s own
    timeout (on this idle host the wait would otherwise last it out).
    Meanwhile no other thread runs the loop, nor reads its state."""
    h = _host.Host(["--db", "default=sqlite:///:memory:"], driven=True)
    try:
        assert h.driven
        got = []

        def lead():
            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                got.extend(h.news(5.0))

        t = threading.Thread(target=lead)
        t.start()
        time.sleep(0.3)  # the thread now waits in news()
        with pytest.raises(RuntimeError, match="one driver at a time"):
            h.news(0.0)
        assert (h.pending(), h.busy(), h.timeout()) == (1, 1, 0)  # the driver's
        t0 = time.monotonic()
        s = h.submit(encode_request(1, "ping")[4:])
        t.join(10)
        assert got == [s] and time.monotonic() - t0 < 2.0
        assert decode_response(s.take()[0]).status == "Ok" and s.done
        s.release()
    finally:
        h.close()


@pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set")
def test_fork_child_has_its_own_session(pg):
    """A transaction open in the parent stays the parent's: the child's
    client opens a session of its own, where the parent's tx_id is
    refused, and its own transaction commits; the parent's commits after."""
    pg.execute("drop table if exists fork_tx")
    pg.execute("create table fork_tx(v int)")
    with InProcessClient(pg_args("--allow-write", "default")) as c:
        tx = c.transaction().__enter__()
        tx.execute("insert into fork_tx values (1)")
        def child():
            with pytest.raises(InvalidInput):
                c.execute("insert into fork_tx values (99)", tx_id=tx.id)
            with c.transaction() as mine:
                mine.execute("insert into fork_tx values (2)")
            return "ok"

        in_child(child)
        assert pg.execute("select v from fork_tx order by v").fetchall() == [(2,)]
        tx.commit()
    assert pg.execute("select v from fork_tx order by v").fetchall() == [(1,), (2,)]


def test_closed_client_refuses_calls(tmp_path):
    c = InProcessClient(sqlite_args(tmp_path / "c.db"))
    assert c.query("select 1").rows == [(1,)]
    c.close()
    with pytest.raises(WorkerUnavailable, match="closed"):
        c.query("select 1")




def test_a_request_above_max_request_bytes_is_answered_at_once(tmp_path):
    """The host answers an oversized request inside submit: the client
    hands that answer out without waiting for news on the fd."""
    args = sqlite_args(tmp_path / "big.db") + ["--max-request-bytes", "4096"]
    with InProcessClient(args) as c:
        t0 = time.monotonic()
        with pytest.raises(InvalidInput):
            c.query("select $1", ["x" * 10000])
        assert time.monotonic() - t0 < 1.0
        assert c.query("select $1", ["y"]).rows == [("y",)]


# ---- the host's timers run while no call is made ----

@pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set")
@pytest.mark.parametrize("client", ["sync", "asyncio"])
def test_an_idle_transaction_is_rolled_back_while_no_call_is_made(pg, client):
    """tx_idle_timeout_ms is a timer of the host: the asyncio client's host
    (driven by the event loop) runs it while the loop only sleeps, the
    blocking client's (driven by the calling threads) by its keeper thread
    while no thread is in a call. The server
    then holds no row of the transaction and no backend is idle in it."""
    pg.execute("drop table if exists idle_tx")
    pg.execute("create table idle_tx(v int)")
    args = pg_args("--allow-write", "default", "--tx-idle-timeout-ms", "300")

    def idle_in_tx():
        return pg.execute("select count(*) from pg_stat_activity where state like 'idle in transaction%'"
                          " and query like '%idle_tx%'").fetchone()[0]

    if client == "sync":
        with InProcessClient(args) as c:
            tx = c.transaction().__enter__()
            tx.execute("insert into idle_tx values (1)")
            assert idle_in_tx() == 1
            time.sleep(1.0)
            assert idle_in_tx() == 0
            with pytest.raises(InvalidInput, match="unknown tx_id"):
                tx.query("select 1")
    else:
        async def main():
            async with AsyncInProcessClient(args) as ac:
                tx = await ac.transaction().__aenter__()
                await tx.execute("insert into idle_tx values (1)")
                assert idle_in_tx() == 1
                await asyncio.sleep(1.0)
                assert idle_in_tx() == 0
                with pytest.raises(InvalidInput, match="unknown tx_id"):
                    await tx.query("select 1")
        asyncio.run(main())
    assert pg.execute("select count(*) from idle_tx").fetchone() == (0,)


def _wakeups(tid):
    """How often thread ``tid`` of this process was switched out so far."""
    with open(f"/proc/self/task/{tid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if "ctxt_switches" in line)
    return sum(int(v) for v in fields.values())


@pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set")
def test_an_idle_transaction_keeps_no_thread_polling_the_host(pg):
    """The blocking client's keeper stands by while a transaction is open
    (its idle timer needs the host's loop), but while nothing runs in the
    transaction it sleeps until the host's next timer (at most the pool's
    once-a-second tick) instead of waiting on the host's fd 10 times a
    second; and a cancel inside the transaction does not hold the call."""
    args = pg_args("--allow-write", "default", "--tx-idle-timeout-ms", "10000")
    with InProcessClient(args, client_timeout_s=0.3) as c:
        with pytest.raises(DbError, match="rolled back"), c.transaction() as tx:
            tx.query("select 1")
            keeper = next(t for t in threading.enumerate() if t.name == "molt-db-host-keeper")
            assert c._conn.host.pending() >= 1 and c._conn.host.busy() == 0
            before = _wakeups(keeper.native_id)
            time.sleep(1.0)
            woke = _wakeups(keeper.native_id) - before
            assert woke <= 4, f"the keeper woke {woke} times in 1 s of an idle transaction"
            t0 = time.monotonic()
            with pytest.raises(Timeout):
                tx.query("select pg_sleep(5)")
            assert time.monotonic() - t0 < 0.6
            assert c._conn.host.busy() == 0


def test_a_finalizer_closing_the_host_while_news_lists_its_streams():
    """Making the list of ready streams may run the collector, and a
    finalizer may close the host there: news() raises HostError instead of
    reading the freed host."""
    import gc
    h = _host.Host(["--db", "default=sqlite:///:memory:"], driven=True)
    streams = [h.submit(encode_request(i + 1, "ping")[4:]) for i in range(70)]
    armed = []

    def close_inside_news(phase, info):
        if phase == "start" and armed and not h.closed:
            h.close()

    old = gc.get_threshold()
    gc.callbacks.append(close_inside_news)
    pad = []
    try:
        gc.set_threshold(1)  # the collector runs every other allocation
        with pytest.raises(_host.HostError, match="closed"):
            for _ in range(1000):
                armed.append(True)
                h.news(0.0)
                armed.clear()
                pad.append([])  # moves the collector's turn by one
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(close_inside_news)
    assert h.closed
    del streams
