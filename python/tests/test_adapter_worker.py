"""molt_db_adapter against the real build/molt_worker over stdio, with a real
SQLite file and sqlite3 as the oracle. Skipped (with the reason) until the
worker binary exists.

The worker command line follows the worker issue:
    molt_worker --stdio --db default=sqlite:///PATH --allow-write default
"""

import asyncio
import os
import pathlib
import signal
import sqlite3
import threading
import time

import pytest

from molt_db_adapter import (
    AsyncMoltClient,
    DbError,
    InvalidInput,
    MoltClient,
    Timeout,
    WorkerUnavailable,
)
from molt_sql import count, table

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("MOLT_BUILD_DIR", ROOT / "build"))
WORKER = BUILD / "molt_worker"

# every test on the worker and in process (conftest.py's transport)
pytestmark = pytest.mark.usefixtures("transport")

# a SQLite query that runs for many seconds unless it is stopped
SLOW = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) "
        "SELECT count(*) FROM c")


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    if not WORKER.exists():
        pytest.skip(f"{WORKER} does not exist yet (the worker issue); these tests run once it is built")
    path = tmp_path_factory.mktemp("worker") / "app.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL, email text, age integer)")
    db.executemany("INSERT INTO users VALUES (?, ?, ?, ?)",
                   [(i, f"user{i}", f"u{i}@austin.edu" if i % 3 else f"u{i}@x.org", 20 + i % 50)
                    for i in range(1, 501)])
    db.execute("CREATE TABLE log (id integer PRIMARY KEY, msg text)")
    db.commit()
    db.close()
    return path


def cmd(db_path):
    return [str(WORKER), "--stdio", "--db", f"default=sqlite:///{db_path}", "--allow-write", "default"]


@pytest.fixture
def client(db_path):
    with MoltClient(cmd(db_path)) as c:
        yield c


def oracle(db_path, sql, params=()):
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, params).fetchall()


def test_ping(client):
    info = client.ping()
    assert info["pid"] == client.worker_pid
    assert "version" in info


@pytest.mark.parametrize("fmt", ["msgpack", "json", "arrow_ipc"])
def test_query_rows_match_sqlite(client, db_path, fmt):
    if fmt == "arrow_ipc":
        pytest.importorskip("pyarrow")
    r = client.query("SELECT id, name, age FROM users WHERE age > $1 ORDER BY id", [60], result_format=fmt)
    want = oracle(db_path, "SELECT id, name, age FROM users WHERE age > ? ORDER BY id", (60,))
    assert r.columns == ["id", "name", "age"]
    assert r.rows == want
    assert r.dicts()[0] == dict(zip(["id", "name", "age"], want[0]))
    assert r.codec == fmt and r.raw
    assert r.metrics.get("db_alias") == "default"
    assert r.metrics.get("db_row_count") == len(want)


def test_json_payload_is_passed_through_untouched(client):
    import json

    r = client.query("SELECT id, name FROM users WHERE id <= $1 ORDER BY id", [2], result_format="json")
    assert json.loads(r.raw)["rows"] == [[1, "user1"], [2, "user2"]]


def test_to_arrow(client, db_path):
    pytest.importorskip("pyarrow")
    t = client.query("SELECT id, email FROM users ORDER BY id", result_format="arrow_ipc").to_arrow()
    assert t.num_rows == 500
    assert t.column("email").to_pylist() == [r[0] for r in oracle(db_path, "SELECT email FROM users ORDER BY id")]


def test_named_params(client, db_path):
    r = client.query("SELECT id FROM users WHERE age = :age AND id < :lim ORDER BY id", {"age": 30, "lim": 200})
    assert r.rows == oracle(db_path, "SELECT id FROM users WHERE age = 30 AND id < 200 ORDER BY id")


def test_max_rows_truncates(client):
    r = client.query("SELECT id FROM users ORDER BY id", max_rows=10)
    assert len(r.rows) == 10 and r.truncated


def test_db_error_carries_sqlstate(client):
    with pytest.raises(DbError) as ei:
        client.query("SELECT no_such_column FROM users")
    assert ei.value.sqlstate and len(ei.value.sqlstate) == 5
    assert "no_such_column" in ei.value.message


def test_worker_rejects_unknown_alias(client):
    with pytest.raises(InvalidInput) as ei:
        client.query("SELECT 1", db_alias="nope")
    assert not ei.value.client_side


def test_query_cannot_write(client):
    with pytest.raises(DbError) as ei:
        client.query("INSERT INTO log (msg) VALUES ('x') RETURNING id")
    assert ei.value.sqlstate == "25006"


def test_execute_and_returning(client, db_path):
    r = client.execute("INSERT INTO log (msg) VALUES ($1)", ["hello"])
    assert r.rows_affected == 1 and r.last_insert_id
    assert oracle(db_path, "SELECT msg FROM log WHERE id = ?", (r.last_insert_id,)) == [("hello",)]
    r = client.execute(statements=[("INSERT INTO log (msg) VALUES ($1)", ["a"]),
                                   ("INSERT INTO log (msg) VALUES ($1)", ["b"])])
    assert [x.rows_affected for x in r.results] == [1, 1]


def test_worker_timeout_stops_the_query(client):
    t0 = time.monotonic()
    with pytest.raises(Timeout) as ei:
        client.query(SLOW, timeout_ms=200)
    assert not ei.value.client_side
    assert time.monotonic() - t0 < 2.0
    assert client.query("SELECT 1").rows == [(1,)]  # the connection is still good


def test_client_timeout_sends_cancel(db_path):
    with MoltClient(cmd(db_path), client_timeout_s=0.3) as c:
        t0 = time.monotonic()
        with pytest.raises(Timeout) as ei:
            c.query(SLOW)
        assert ei.value.client_side
        assert time.monotonic() - t0 < 1.5
        # the worker got the cancel: its in-flight count drops back
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            st = c.stats()
            if not _in_flight(st):
                break
            time.sleep(0.05)
        assert not _in_flight(c.stats())


def _in_flight(stats):
    for k in ("in_flight", "requests_in_flight"):
        if k in stats:
            return stats[k]
    w = stats.get("worker", {})
    return w.get("in_flight", 0) if isinstance(w, dict) else 0


@pytest.mark.worker_only("kills the worker process")
def test_killed_worker_restarts_and_resends_idempotent_query(db_path):
    sent = []
    with MoltClient(cmd(db_path), before_send=sent.append) as c:
        first = c.ping()["pid"]
        threading.Timer(0.3, os.kill, (first, signal.SIGKILL)).start()
        # resent to the new worker, where it runs until its own deadline
        with pytest.raises(Timeout):
            c.query(SLOW, timeout_ms=1500)
        assert [i.attempt for i in sent if i.entry == "db_query"] == [0, 1]
        assert c.connects == 2 and c.ping()["pid"] != first


@pytest.mark.worker_only("kills the worker process")
def test_killed_worker_resent_query_succeeds(db_path):
    medium = SLOW.replace("2000000000", "5000000")
    sent = []
    with MoltClient(cmd(db_path), before_send=sent.append) as c:
        first = c.ping()["pid"]
        threading.Timer(0.1, os.kill, (first, signal.SIGKILL)).start()
        assert c.query(medium).rows == [(5000000,)]
        assert [i.attempt for i in sent if i.entry == "db_query"] == [0, 1]
        assert c.worker_pid != first


@pytest.mark.worker_only("kills the worker process")
def test_restart_limit_zero_gives_up(db_path):
    with MoltClient(cmd(db_path), max_restarts=0) as c:
        threading.Timer(0.2, os.kill, (c.ping()["pid"], signal.SIGKILL)).start()
        with pytest.raises(WorkerUnavailable, match="killed by signal 9"):
            c.query(SLOW, timeout_ms=5000)


@pytest.mark.worker_only("kills the worker process")
def test_killed_worker_non_idempotent_exec_raises(db_path):
    with MoltClient(cmd(db_path)) as c:
        c.ping()
        threading.Timer(0.2, os.kill, (c.worker_pid, signal.SIGKILL)).start()
        with pytest.raises(WorkerUnavailable, match="not marked idempotent"):
            c.execute("INSERT INTO log (msg) SELECT 'x' FROM (" + SLOW + ")", timeout_ms=10000)
        assert c.ping()["pid"] == c.worker_pid  # restarted for the next call


def test_many_threads_share_one_client(client, db_path):
    errors = []
    seen = []

    def work(k):
        try:
            for i in range(1, 51):
                uid = (k * 50 + i) % 500 + 1
                seen.append((uid, client.query("SELECT name FROM users WHERE id = $1", [uid]).rows[0][0]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert len(seen) == 800 and all(name == f"user{uid}" for uid, name in seen)


def test_thousands_of_async_tasks(db_path):
    async def main():
        async with AsyncMoltClient(cmd(db_path)) as c:
            rs = await asyncio.gather(*[c.query("SELECT $1 + 0", [i]) for i in range(3000)])
            return [r.rows[0][0] for r in rs]

    assert asyncio.run(main()) == list(range(3000))


def test_async_task_cancel_stops_the_query(db_path):
    async def main():
        async with AsyncMoltClient(cmd(db_path)) as c:
            task = asyncio.create_task(c.query(SLOW))
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # the worker is free again: a query is answered at once
            r = await asyncio.wait_for(c.query("SELECT 1"), 2.0)
            return r.rows, time.monotonic() - t0

    rows, took = asyncio.run(main())
    assert rows == [(1,)] and took < 2.0


def test_stream_rows(client, db_path):
    with client.stream("SELECT id FROM users ORDER BY id", batch_rows=64) as s:
        ids = [r[0] for r in s]
    assert ids == list(range(1, 501))
    assert s.columns == ["id"] and s.metrics


def test_hooks_see_every_call(db_path):
    sent, got = [], []
    with MoltClient(cmd(db_path), before_send=sent.append, after_recv=lambda i, r: got.append((i, r))) as c:
        c.query("SELECT 1", tag="probe")
        with pytest.raises(DbError):
            c.query("SELECT nope")
    assert [i.tag for i in sent] == ["probe", None]
    assert [r.status for _, r in got] == ["Ok", "DbError"]
    assert got[0][1].metrics.get("db_tag") == "probe"


def test_async_hooks_see_every_call(db_path):
    sent, got = [], []

    async def main():
        async with AsyncMoltClient(cmd(db_path), before_send=sent.append,
                                   after_recv=lambda i, r: got.append((i, r))) as c:
            await c.query("SELECT 1", tag="probe")
            with pytest.raises(DbError):
                await c.query("SELECT nope")

    asyncio.run(main())
    assert [i.tag for i in sent] == ["probe", None]
    assert [r.status for _, r in got] == ["Ok", "DbError"]
    assert got[0][0] is sent[0] and got[0][1].metrics.get("db_tag") == "probe"


def test_molt_sql_through_the_worker_matches_sqlite(client, db_path):
    U = table("users")
    q = (U.where(U.email.endswith("@austin.edu") & (U.age.between(25, 40)))
         .select(U.id, U.email).order_by(U.id).limit(100).using(client, "default", "sqlite"))
    want = oracle(db_path, "SELECT id, email FROM users WHERE email GLOB '*@austin.edu' "
                           "AND age BETWEEN 25 AND 40 ORDER BY id LIMIT 100")
    assert q.fetch_all_sync() == want
    g = U.group_by(U.age).select(U.age, count().as_("n")).order_by(U.age).using(client, "default", "sqlite")
    assert g.fetch_all_sync() == oracle(db_path, "SELECT age, count(*) FROM users GROUP BY age ORDER BY age")
    assert U.select(count()).using(client, "default", "sqlite").fetch_val_sync() == 500
