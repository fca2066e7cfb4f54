"""AsyncInProcessClient's short way for one-shot calls (a query or execute
without hooks, its _host.Waiter completed in C by _host.drain and its task
woken by _host.wake): the same results and errors as the general path
(which a hook forces), task cancellation that ends the query on the
server (alone, and one among many in flight), client-side timeouts (alone
and among many), many answers handed out per host turn, thousands of
concurrent tasks on one client each given its own answer, the loop closed
with calls in flight, and the Waiter's Future protocol (asyncio.wait_for,
callbacks, cancel). Plain calls are made in C up to the await
(submit_plain); a lost host resends only an idempotent one. A finalizer
run by the collector inside drain (closing the host, releasing streams,
cancelling waiters) leaves no freed frame read and no task waiting.
"""
import asyncio
import os
import sys
import time

import pytest

from molt_db_adapter import AsyncInProcessClient, AsyncMoltClient, DbError, MoltError, Timeout, WorkerUnavailable
from molt_db_adapter.results import QueryResult
from test_rows_c import ARRAYS_SQL, MANY_SQL, NULLS_SQL
from test_worker_pg import SCALAR_EDGES_SQL, TYPES_SQL
from worker_client import in_process_args, pg_client_cmd

pytest.importorskip("molt_db_adapter._host", reason="molt_db_adapter._host is not built")

DSN = os.environ.get("MOLT_TEST_DSN")
pytestmark = pytest.mark.skipif(not DSN, reason="MOLT_TEST_DSN is not set")

ALL_SQL = [TYPES_SQL, SCALAR_EDGES_SQL, ARRAYS_SQL, MANY_SQL, NULLS_SQL]
IDS = ["types", "edges", "arrays", "many", "nulls"]


def pg_args(*extra):
    return ["--db", f"default={DSN}", "--pool", "default:allow_privileged_role=true", *extra]


def running(pg, marker):
    rows = pg.execute(
        "select pid from pg_stat_activity where query like %s and pid <> pg_backend_pid()",
        (f"%{marker}%",)).fetchall()
    return [r[0] for r in rows]


def wait_for(pg, marker, present, within=5.0):
    """Whether the server shows a query with ``marker`` (present=True: until
    one runs; False: until none does), polled up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while bool(running(pg, marker)) != present and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(running(pg, marker))


def counted_fast(client):
    """The number of fast submits (submit_fast, or submit_plain for a plain
    query / execute) the client's exchange makes from now on (a list whose
    [0] grows), so a test sees which path a call took."""
    conn = client._conn
    seen = [0]

    def counted(real):
        def submit(*a):
            waiter = real(*a)
            seen[0] += waiter is not None
            return waiter
        return submit

    conn.submit_fast = counted(conn.submit_fast)
    conn.submit_plain = counted(conn.submit_plain)
    return seen


def frames_seen(client):
    """The kinds of what drain handed the fast calls from now on: "plain"
    (a plain Ok answer read in C) or "bytes" (a frame for the general
    decoding)."""
    conn = client._conn
    real = conn._drain
    seen = []

    def drain(host, fast, max_frame, woken, plain):
        pending = [w for w in fast.values() if not w.done()]
        news = real(host, fast, max_frame, woken, plain)
        seen.extend("plain" if type(w.result()) in (tuple, QueryResult) else "bytes"
                    for w in pending if w.done() and not w.cancelled())
        return news

    conn._drain = drain
    return seen


def general_path_hook(info, resp):
    """An after_recv hook: a client with a hook never takes the short way."""


@pytest.mark.parametrize("numeric", ["str", "decimal"])
@pytest.mark.parametrize("sql", ALL_SQL, ids=IDS)
def test_fast_results_are_the_general_paths(sql, numeric):
    async def run():
        async with AsyncInProcessClient(pg_args(), decode_numeric=numeric) as fast, \
                AsyncInProcessClient(pg_args(), decode_numeric=numeric,
                                     after_recv=general_path_hook) as general:
            await fast.ping()  # the first call makes the exchange
            await general.ping()
            seen = counted_fast(fast)
            kinds = frames_seen(fast)
            a, b = await fast.query(sql), await general.query(sql)
            assert seen[0] == 1 and kinds == ["plain"]
            assert (a.codec, a.columns, a.types, a.row_count, a.truncated) == \
                (b.codec, b.columns, b.types, b.row_count, b.truncated)
            assert repr(a.rows) == repr(b.rows)
            assert repr(a.dicts()) == repr(b.dicts())
            assert a.raw == b.raw
            assert set(a.metrics) == set(b.metrics)
            assert {k: type(v) for k, v in a.metrics.items()} == \
                {k: type(v) for k, v in b.metrics.items()}
            assert a.metrics["db_alias"] == "default" and a.request_id > 0
            for codec in ("json",):
                ja = await fast.query(sql, result_format=codec)
                jb = await general.query(sql, result_format=codec)
                assert repr(ja.rows) == repr(jb.rows)

    asyncio.run(run())


@pytest.mark.parametrize("numeric", ["str", "decimal"])
@pytest.mark.skipif(not os.path.exists(pg_client_cmd()[0]), reason="molt_worker is not built")
def test_plain_results_are_complete_when_the_task_wakes_and_equal_the_worker_clients(numeric):
    """64 plain queries in flight: each task wakes with a QueryResult that
    drain made in C (rows decoded already, metrics still the lazy
    _host.Metrics), and each equals what AsyncMoltClient gets from a
    molt_worker for the same query: rows, columns, types, metrics (keys,
    their types, db_alias, db_row_count). About 0.3 s."""
    cmd = pg_client_cmd()
    sql = "select $1::int8 as i, repeat('x', $1::int4) as t, $1::numeric / 7 as n, now() > $2 as later"

    async def run():
        async with AsyncInProcessClient(in_process_args(cmd), decode_numeric=numeric) as fast, \
                AsyncMoltClient(cmd, decode_numeric=numeric) as worker:
            await fast.ping()  # the first call makes the exchange
            seen = counted_fast(fast)
            params = [[i, "2000-01-01"] for i in range(64)]
            got = await asyncio.gather(*(fast.query(sql, p) for p in params))
            assert seen[0] == 64
            for r in got:
                assert type(r) is QueryResult
                assert r._rows is not None and type(r._metrics).__name__ == "Metrics"
            want = await asyncio.gather(*(worker.query(sql, p) for p in params))
            for i, (a, b) in enumerate(zip(got, want)):
                assert repr(a.rows) == repr(b.rows) and a.rows[0][0] == i
                assert (a.codec, a.columns, a.types, a.row_count, a.truncated) == \
                    (b.codec, b.columns, b.types, b.row_count, b.truncated)
                assert set(a.metrics) == set(b.metrics)
                assert {k: type(v) for k, v in a.metrics.items()} == \
                    {k: type(v) for k, v in b.metrics.items()}
                assert (a.metrics["db_alias"], a.metrics["db_row_count"]) == \
                    (b.metrics["db_alias"], b.metrics["db_row_count"]) == ("default", 1)
            assert len({r.request_id for r in got}) == 64

    asyncio.run(run())


def test_fast_execute_and_errors_are_the_general_paths(tmp_path):
    db = tmp_path / "f.db"
    args = ["--db", f"default=sqlite:///{db}", "--allow-write", "default"]

    async def run():
        async with AsyncInProcessClient(args) as fast, \
                AsyncInProcessClient(args, after_recv=general_path_hook) as general:
            await fast.execute("create table t (id integer primary key, v text)")
            seen = counted_fast(fast)
            kinds = frames_seen(fast)
            r = await fast.execute("insert into t (v) values ($1), ($2) returning id, v", ["a", "b"])
            g = await general.execute("insert into t (v) values ($1) returning id, v", ["c"])
            assert seen[0] == 1
            assert (r.rows_affected, r.rows, r.columns) == (2, [(1, "a"), (2, "b")], ["id", "v"])
            assert (g.rows_affected, g.rows) == (1, [(3, "c")])
            errors = []
            for c in (fast, general):
                with pytest.raises(DbError) as e:
                    await c.query("select * from no_such_table")
                errors.append((type(e.value), e.value.message))
            assert errors[0] == errors[1]
            assert seen[0] == 2 and kinds == ["plain", "bytes"]
            # what the server holds after the fast calls
            assert (await general.query("select v from t order by id")).rows == [("a",), ("b",), ("c",)]

    asyncio.run(run())


def test_cancelling_a_fast_call_ends_the_server_query(pg):
    marker = "inproc_fast_cancel"

    async def run():
        async with AsyncInProcessClient(pg_args()) as c:
            await c.query("select 1")  # the exchange exists: the next call is fast
            seen = counted_fast(c)
            task = asyncio.create_task(c.query(f"select pg_sleep(30) /* {marker} */"))
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, wait_for, pg, marker, True)
            assert seen[0] == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not await loop.run_in_executor(None, wait_for, pg, marker, False)
            assert not c._conn.fast
            return (await c.query("select 3")).rows

    assert asyncio.run(run()) == [(3,)]


def test_a_fast_call_past_its_client_timeout_raises_and_ends_the_server_query(pg):
    marker = "inproc_fast_timeout"

    async def run():
        async with AsyncInProcessClient(pg_args(), client_timeout_s=0.5) as c:
            await c.query("select 1")
            seen = counted_fast(c)
            t0 = time.monotonic()
            with pytest.raises(Timeout) as e:
                await c.query(f"select pg_sleep(30) /* {marker} */")
            assert e.value.client_side
            assert 0.4 < time.monotonic() - t0 < 3.0
            assert seen[0] == 1
            loop = asyncio.get_running_loop()
            assert not await loop.run_in_executor(None, wait_for, pg, marker, False)
            assert not c._conn.fast
            return (await c.query("select 4")).rows

    assert asyncio.run(run()) == [(4,)]


def test_ten_thousand_concurrent_tasks_each_get_their_own_answer():
    async def run():
        # past max_session_inflight (4096 by default) the host answers Busy
        args = pg_args("--pool", "default:max_conns=8", "--max-inflight", "20000",
                       "--max-session-inflight", "20000")
        async with AsyncInProcessClient(args) as c:
            await c.query("select 1")
            seen = counted_fast(c)

            async def one(i):
                r = await c.query("select $1::int8, $2::text", [i, f"n{i}"])
                return r.rows[0]

            got = await asyncio.gather(*(one(i) for i in range(10_000)))
            assert seen[0] == 10_000
            assert got == [(i, f"n{i}") for i in range(10_000)]
            assert not c._conn.fast and not c._conn.live

    asyncio.run(run())


def test_a_fast_call_on_a_closed_client_and_after_close_in_flight():
    async def run():
        c = AsyncInProcessClient(pg_args(), max_restarts=0)
        await c.query("select 1")
        task = asyncio.create_task(c.query("select pg_sleep(30)"))
        await asyncio.sleep(0.2)
        await c.close()
        with pytest.raises(Exception) as e:
            await task
        return type(e.value).__name__

    assert asyncio.run(run()) == "WorkerUnavailable"


def counted_turns(client):
    """The number of answers each host turn completed from now on (a list
    of counts, one per drain)."""
    conn = client._conn
    real = conn._drain
    per_turn = []

    def drain(host, fast, max_frame, woken, plain):
        before = len(woken)
        news = real(host, fast, max_frame, woken, plain)
        per_turn.append(len(woken) - before)
        return news

    conn._drain = drain
    return per_turn


def test_submissions_of_one_loop_iteration_go_in_one_turn_and_each_task_gets_its_own_row():
    async def run():
        async with AsyncInProcessClient(pg_args("--pool", "default:max_conns=16")) as c:
            await c.query("select 1")
            seen = counted_fast(c)
            per_turn = counted_turns(c)

            async def one(i):
                return (await c.query("select $1::int8, $2::text", [i, f"row{i}"])).rows

            tasks = [asyncio.create_task(one(i)) for i in range(64)]
            await asyncio.sleep(0)  # each task ran its first step: all 64 submitted
            # the first went out in its own submit's turn; the other 63 wait
            # for the one turn scheduled after them
            assert seen[0] == 64 and len(c._conn.fast) == 64
            assert len(per_turn) == 1 and c._conn._turn is not None
            got = await asyncio.gather(*tasks)
            assert got == [[(i, f"row{i}")] for i in range(64)]
            assert sum(per_turn) == 64  # every answer handed out by a turn in C
            assert not c._conn.fast and not c._conn.live and not c._conn.woken

    asyncio.run(run())


def test_cancelling_one_call_among_many_in_flight_ends_only_that_query(pg):
    marker = "inproc_one_of_many"

    async def run():
        async with AsyncInProcessClient(pg_args("--pool", "default:max_conns=8")) as c:
            await c.query("select 1")
            loop = asyncio.get_running_loop()
            tasks = [asyncio.create_task(c.query(f"select $1::int8 from pg_sleep(1.5) /* {marker}_{i}_ */", [i]))
                     for i in range(8)]
            assert await loop.run_in_executor(None, wait_for, pg, f"{marker}_3_", True)
            tasks[3].cancel()
            with pytest.raises(asyncio.CancelledError):
                await tasks[3]
            assert not await loop.run_in_executor(None, wait_for, pg, f"{marker}_3_", False, 1.0)
            # the others still run on the server, then answer with their own rows
            assert len(running(pg, marker)) == 7
            got = [(await t).rows for i, t in enumerate(tasks) if i != 3]
            assert got == [[(i,)] for i in range(8) if i != 3]
            assert not c._conn.fast

    asyncio.run(run())


def test_a_client_timeout_among_many_fails_only_the_late_call(pg):
    marker = "inproc_late_of_many"

    async def run():
        async with AsyncInProcessClient(pg_args("--pool", "default:max_conns=8"), client_timeout_s=0.5) as c:
            await c.query("select 1")
            slow = asyncio.create_task(c.query(f"select pg_sleep(30) /* {marker} */"))
            quick = [asyncio.create_task(c.query("select $1::int8", [i])) for i in range(32)]
            assert [(await t).rows for t in quick] == [[(i,)] for i in range(32)]
            with pytest.raises(Timeout) as e:
                await slow
            assert e.value.client_side
            loop = asyncio.get_running_loop()
            assert not await loop.run_in_executor(None, wait_for, pg, marker, False)
            assert not c._conn.fast
            return (await c.query("select 5")).rows

    assert asyncio.run(run()) == [(5,)]


def test_the_loop_closed_with_calls_in_flight_then_close_without_loop(pg):
    marker = "inproc_loop_closed"
    loop = asyncio.new_event_loop()
    c = AsyncInProcessClient(pg_args())

    async def start():
        await c.query("select 1")
        tasks = [loop.create_task(c.query(f"select pg_sleep(30) /* {marker} */")) for _ in range(4)]
        await asyncio.sleep(0.3)
        return tasks

    tasks = loop.run_until_complete(start())
    assert all(not t.done() for t in tasks) and len(c._conn.fast) == 4
    loop.close()  # the tasks are abandoned, still waiting
    c.close_without_loop()  # no loop to wake them on: the host is freed all the same
    assert c._conn is None
    # the host's connections are closed: the server ends their queries
    assert not wait_for(pg, marker, False, within=10.0)
    for t in tasks:
        t._log_destroy_pending = False  # abandoned on purpose


def test_asyncio_wait_for_cancels_a_fast_call_through_its_waiter(pg):
    marker = "inproc_wait_for"

    async def run():
        async with AsyncInProcessClient(pg_args()) as c:
            await c.query("select 1")
            seen = counted_fast(c)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.query(f"select pg_sleep(30) /* {marker} */"), 0.5)
            assert seen[0] == 1
            loop = asyncio.get_running_loop()
            assert not await loop.run_in_executor(None, wait_for, pg, marker, False)
            assert not c._conn.fast
            return (await c.query("select 6")).rows

    assert asyncio.run(run()) == [(6,)]


def test_the_waiter_speaks_the_future_protocol():
    async def run():
        async with AsyncInProcessClient(pg_args()) as c:
            await c.query("select 1")
            conn = c._conn
            loop = asyncio.get_running_loop()
            reported = []
            loop.set_exception_handler(lambda lp, ctx: reported.append(ctx["exception"]))
            call = c._query_call("select 7", None, db_alias=None, result_format="msgpack", max_rows=None,
                                 timeout_ms=None, tag=None, row_shape=None, idempotent=True)
            w = conn.submit_fast(c._new_id(), call, 30.0)
            assert asyncio.isfuture(w) and w.get_loop() is loop and not w.done()
            with pytest.raises(asyncio.InvalidStateError):
                w.result()
            ran = []

            def bad(fut):
                raise ValueError("a callback's own error")

            w.add_done_callback(bad)
            w.add_done_callback(lambda fut: ran.append(fut.result()))
            w.add_done_callback(ran.append)
            assert w.remove_done_callback(ran.append) == 1
            parts = await w  # completed by a host turn; its callbacks ran after it
            assert type(parts) is tuple and parts[0] == "msgpack"
            assert w.done() and not w.cancelled() and w.exception() is None
            assert ran == [parts]
            assert [str(e) for e in reported] == ["a callback's own error"]
            assert conn.result_of(call, parts, w.request_id).rows == [(7,)]
            # a callback added once it is done is scheduled, as a Future's is
            late = loop.create_future()
            w.add_done_callback(late.set_result)
            assert await late is w
            # cancel(): pending only; a task awaiting it gets CancelledError
            slow = c._query_call("select pg_sleep(30)", None, db_alias=None, result_format="msgpack",
                                 max_rows=None, timeout_ms=None, tag=None, row_shape=None, idempotent=True)
            w2 = conn.submit_fast(c._new_id(), slow, 30.0)
            assert w2.cancel("stop") and not w2.cancel() and w2.cancelled()
            with pytest.raises(asyncio.CancelledError):
                await w2
            conn.unfast(w2)
            assert not conn.fast or list(conn.fast.values()) == []
            return (await c.query("select 8")).rows

    assert asyncio.run(run()) == [(8,)]


def test_the_waiter_survives_callbacks_that_change_it_while_compared():
    """remove_done_callback compares with each callback's __eq__, which
    may cancel the Waiter (its callbacks scheduled, its list dropped) or
    add callbacks; _host.wake takes Waiters only."""
    from molt_db_adapter import _host

    async def run():
        async with AsyncInProcessClient(pg_args()) as c:
            await c.query("select 1")
            conn = c._conn
            slow = c._query_call("select pg_sleep(30)", None, db_alias=None, result_format="msgpack",
                                 max_rows=None, timeout_ms=None, tag=None, row_shape=None, idempotent=True)
            w = conn.submit_fast(c._new_id(), slow, 30.0)
            ran = []

            class Meddler:
                def __init__(self, act):
                    self.act = act

                def __call__(self, fut):
                    ran.append(self)

                def __eq__(self, other):
                    self.act()
                    return other is self

                __hash__ = object.__hash__

            adder = Meddler(lambda: w.add_done_callback(ran.append))
            canceller = Meddler(lambda: w.cancel("meddled"))
            for fn in (ran.append, adder, ran.append, canceller, ran.append):
                w.add_done_callback(fn)
            # comparing with adder adds callbacks; canceller's __eq__, met
            # on the way, cancels the Waiter in the middle of the scan
            w.remove_done_callback(adder)
            assert w.cancelled()
            assert w.remove_done_callback(canceller) == 0
            with pytest.raises(asyncio.CancelledError):
                await w
            await asyncio.sleep(0)
            # cancelled inside the scan: every callback it had then ran once
            assert sum(x is canceller for x in ran) == 1 and sum(x is adder for x in ran) == 1
            conn.unfast(w)
            with pytest.raises(TypeError):
                _host.wake([object()])
            return (await c.query("select 9")).rows

    assert asyncio.run(run()) == [(9,)]


def test_tasks_sharing_one_context_each_get_their_own_answer():
    import contextvars

    var = contextvars.ContextVar("var", default="unset")

    async def run():
        async with AsyncInProcessClient(pg_args("--pool", "default:max_conns=4")) as c:
            await c.query("select 1")
            loop = asyncio.get_running_loop()
            shared = contextvars.copy_context()
            shared.run(var.set, "shared")

            async def one(i):
                r = await c.query("select $1::int8", [i])
                return r.rows[0][0], var.get()

            tasks = [loop.create_task(one(i), context=shared) for i in range(16)]
            return await asyncio.gather(*tasks)

    assert asyncio.run(run()) == [(i, "shared") for i in range(16)]


def test_one_call_at_a_time_costs_one_loop_iteration_a_call():
    async def run():
        async with AsyncInProcessClient(pg_args()) as c:
            await c.query("select 1")
            loop = asyncio.get_running_loop()
            seen = counted_fast(c)
            iterations = [0]
            real = loop._run_once  # type: ignore[attr-defined]

            def run_once():
                iterations[0] += 1
                real()

            loop._run_once = run_once  # type: ignore[attr-defined]
            try:
                got = [(await c.query("select $1::int8", [i])).rows[0][0] for i in range(200)]
            finally:
                del loop._run_once
            assert got == list(range(200)) and seen[0] == 200
            # the answer's turn wakes the task, whose next call goes out in
            # its own submit's turn: the loop only waits for each answer
            assert iterations[0] < 300

    asyncio.run(run())


class _CollectorInsideDrain:
    """Runs ``action`` once from a gc callback (as a finalizer would run)
    at the first collection inside ``_host.drain`` after it completed a
    waiter: drain is then in the middle of a turn's answers, reading a
    frame and building its objects (each allocation may run the collector:
    gc.set_threshold(1) makes nearly every one run it)."""

    def __init__(self, conn, action):
        self.inside = False
        self.fired = False
        self.conn, self.action = conn, action
        real = conn._drain

        def drain(*a):
            self.inside = True
            try:
                return real(*a)
            finally:
                self.inside = False
                if self.after and not self.fired and self.conn.woken:
                    # as a finalizer run between drain and wake (on 3.12
                    # the collector runs there, at the next bytecode)
                    self.fired = True
                    self.action()

        conn._drain = drain
        self.after = False

    def __call__(self, phase, info):
        if phase == "start" and self.inside and not self.fired and self.conn.woken:
            self.fired = True
            self.action()


@pytest.mark.parametrize("action", ["close_host", "shut", "release_streams", "cancel_waiters",
                                    "shut_after_drain", "turn"])
def test_a_finalizer_inside_drain_that_closes_releases_or_cancels(action):
    """While drain hands out 64 answers (making each plain query's
    QueryResult, which runs Python), the collector runs code that closes
    the client's host, releases the streams, cancels the waiters or runs a
    host turn of its own, waking tasks (as a finalizer may): no read of a
    freed frame or host (the ASan stage), and
    every task ends with its own row or a clean error, none left waiting (a
    call whose stream was released is answered by nobody: its client
    timeout ends it)."""
    import gc

    async def run():
        async with AsyncInProcessClient(pg_args("--pool", "default:max_conns=16"),
                                        client_timeout_s=1.0) as c:
            await c.query("select 1")
            conn = c._conn

            def act():
                if action == "close_host":
                    conn.host.close()
                elif action in ("shut", "shut_after_drain"):
                    conn._shut()
                elif action == "turn":
                    conn._on_news()
                elif action == "release_streams":
                    for stream in list(conn.fast):
                        stream.release()
                else:
                    for waiter in list(conn.fast.values()):
                        if waiter.cancel():
                            cancelled.append(waiter)

            cancelled = []

            hook = _CollectorInsideDrain(conn, act)
            hook.after = action == "shut_after_drain"
            gc.callbacks.append(hook)
            old = gc.get_threshold()
            gc.set_threshold(1)
            try:
                # rounds of 64 until one turn hands out answers enough for
                # the collector to run in the middle (nearly always the first)
                for _ in range(10):
                    tasks = [asyncio.create_task(c.query("select $1::int8, repeat('x', 300)", [i]))
                             for i in range(64)]
                    done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
                    if hook.fired:
                        break
            finally:
                gc.set_threshold(*old)
                gc.callbacks.remove(hook)
            if not hook.fired and sys.version_info >= (3, 12):
                # from 3.12 the collector runs between bytecodes, never
                # inside a C function that runs none, as drain
                pytest.skip("the collector does not run inside drain on this Python")
            assert hook.fired
            rows = 0
            for i, got in enumerate(done):
                if isinstance(got, BaseException):
                    assert isinstance(got, (MoltError, asyncio.CancelledError)), repr(got)
                else:
                    assert got.rows == [(i, "x" * 300)]
                    rows += 1
            if action != "cancel_waiters":
                assert rows > 0
            # drain left a waiter cancelled meanwhile as it was
            assert cancelled == [] or all(w.cancelled() for w in cancelled)
            assert (action == "cancel_waiters") == bool(cancelled)
            # the client still answers (on a new host after a close)
            assert (await c.query("select 7")).rows == [(7,)]

    asyncio.run(run())


def test_which_calls_are_made_in_c_up_to_the_await():
    """query/execute with every option at its default (result_format="msgpack"
    counts as one) go through submit_plain; any other option through
    submit_fast; a hook through neither."""
    async def run():
        async with AsyncInProcessClient(pg_args()) as c:
            await c.query("select 1")
            conn = c._conn
            made = []
            for name in ("submit_plain", "submit_fast"):
                real = getattr(conn, name)

                def submit(*a, _real=real, _name=name):
                    waiter = _real(*a)
                    made.append(_name if waiter is not None else None)
                    return waiter

                setattr(conn, name, submit)
            assert (await c.query("select $1::int8", [1])).rows == [(1,)]
            assert (await c.query("select $1::int8", [2], result_format="msgpack")).rows == [(2,)]
            assert (await c.query("select $1::int8", [3], tag="t")).rows == [(3,)]
            assert (await c.query("select $1::text", ["x"], result_format="json")).rows == [("x",)]
            with pytest.raises(DbError):
                await c.query("select * from no_such_table")
            assert made == ["submit_plain", "submit_plain", "submit_fast", "submit_fast", "submit_plain"]
            c.after_recv = general_path_hook
            assert (await c.query("select 4")).rows == [(4,)]
            assert made[5:] == [None]

    asyncio.run(run())


def test_a_plain_call_lost_with_its_host_is_resent_only_when_idempotent(pg):
    """The host closed under a plain query and a plain execute in flight:
    the query (idempotent) is resent on a new host and answers; the
    execute is not resent, and the server holds nothing of it."""
    pg.execute("drop table if exists inproc_plain_lost; create table inproc_plain_lost (v int)")
    marker = "inproc_plain_lost"

    async def run():
        async with AsyncInProcessClient(pg_args("--allow-write", "default")) as c:
            await c.query("select 1")
            q = asyncio.create_task(c.query(f"select $1::int8 from pg_sleep(0.3) /* {marker} */", [9]))
            e = asyncio.create_task(c.execute(
                f"insert into inproc_plain_lost select $1::int from pg_sleep(0.3) /* {marker} */", [1]))
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, wait_for, pg, marker, True)
            c._conn.host.close()  # under the exchange: its next turn finds it closed
            c._conn._kick()
            assert (await q).rows == [(9,)]
            with pytest.raises(MoltError):
                await e

    asyncio.run(run())
    assert not wait_for(pg, marker, False)
    assert pg.execute("select count(*) from inproc_plain_lost").fetchone()[0] == 0
    pg.execute("drop table inproc_plain_lost")


class _DecodingThatRunsOutOfMemory:
    """A client's decoding whose numeric setting raises MemoryError when
    read: the turn that builds a plain query's result (drain) stops
    midway. Everything else is the real decoding's."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    @property
    def numeric(self):
        raise MemoryError("simulated: out of memory building a result")


def test_a_turn_that_fails_midway_fails_the_exchange_not_the_deadline(tmp_path):
    """MemoryError while a turn builds a query's result: the news that turn
    had taken (the executes answered in it) is lost, so every call waiting
    ends at once (WorkerUnavailable: the exchange failed) instead of
    waiting for its client deadline (5 s here); the next call works. The
    query is idempotent: when the executes were answered in a turn before,
    it may be resent on a fresh host and answered, so the failed turn is
    also looked for where the loop reports it."""
    args = ["--db", f"default=sqlite:///{tmp_path / 'turn.db'}", "--allow-write", "default"]
    reported = []

    async def run():
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, ctx: reported.append(ctx.get("exception")))
        async with AsyncInProcessClient(args, client_timeout_s=5) as c:
            await c.query("select 1")
            saved = c.decoding
            c.decoding = _DecodingThatRunsOutOfMemory(saved)
            start = time.monotonic()
            got = await asyncio.gather(c.query("select 99"),
                                       *(c.execute(f"select {i}") for i in range(4)),
                                       return_exceptions=True)
            took = time.monotonic() - start
            c.decoding = saved
            return got, took, (await c.query("select 2 as x")).rows

    got, took, after = asyncio.run(run())
    assert took < 2.5, (took, got)
    assert not any(isinstance(g, Timeout) for g in got), got
    assert any(isinstance(g, (WorkerUnavailable, MemoryError)) for g in got + reported), (got, reported)
    assert after == [(2,)]
