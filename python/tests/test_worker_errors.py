"""Errors a user meets first, against the real worker and the real
PostgreSQL of the harness: a database that can never be reached answers at
once with why (not after the deadline), a worker that cannot start says why
(and is not restarted), and the smaller hints (placeholders, pyarrow)."""

import asyncio
import os
import pathlib
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from molt_db_adapter import (
    AsyncMoltClient,
    ConnectionFailed,
    DbError,
    InvalidInput,
    MoltClient,
    WorkerStartError,
    WorkerUnavailable,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKER = pathlib.Path(os.environ.get("MOLT_WORKER_BIN", ROOT / "build" / "molt_worker"))


@pytest.fixture(scope="module")
def worker():
    if not WORKER.exists():
        pytest.skip(f"{WORKER} is not built")
    return str(WORKER)


def pg_dsn(name="MOLT_TEST_DSN"):
    dsn = os.environ.get(name)
    if not dsn:
        pytest.skip(f"{name} is not set (run under scripts/with_pg.sh)")
    return dsn


def with_password(dsn, password):
    u = urlsplit(dsn)
    host = u.netloc.rsplit("@", 1)[1]
    user = u.netloc.rsplit("@", 1)[0].split(":", 1)[0]
    return urlunsplit((u.scheme, f"{user}:{password}@{host}", u.path, u.query, u.fragment))


def with_database(dsn, db):
    u = urlsplit(dsn)
    return urlunsplit((u.scheme, u.netloc, "/" + db, u.query, u.fragment))


def server_log_failures(needle):
    log = os.environ.get("MOLT_TEST_PGLOG")
    if not log:
        return None
    return pathlib.Path(log).read_text(errors="replace").count(needle)


CASES = [
    # (make the DSN, SQLSTATE, part of the message)
    (lambda: with_password(pg_dsn("MOLT_TEST_DSN_SCRAM"), "wrong"), "28P01", "password authentication failed"),
    (lambda: with_password(pg_dsn("MOLT_TEST_DSN_MD5"), "wrong"), "28P01", "password authentication failed"),
    (lambda: with_database(pg_dsn(), "no_such_database"), "3D000", "no_such_database"),
    (lambda: "postgresql://molt@127.0.0.1:1/molt_test", "08001", "connection to server"),
    (lambda: "postgresql://molt@no-such-host.invalid/molt_test", "08001", "no-such-host.invalid"),
]


@pytest.mark.parametrize("make_dsn,sqlstate,part", CASES, ids=["scram", "md5", "nodb", "refused", "unresolvable"])
def test_unreachable_database_fails_at_once_with_why(worker, make_dsn, sqlstate, part):
    dsn = make_dsn()
    with MoltClient([worker, "--stdio", "--db", f"default={dsn}"]) as c:
        t0 = time.monotonic()
        with pytest.raises(ConnectionFailed) as e:
            c.query("SELECT 1", timeout_ms=30000)
        assert time.monotonic() - t0 < 3.0  # not the 30 s deadline
        assert isinstance(e.value, DbError)
        assert e.value.sqlstate == sqlstate
        assert part in e.value.message
        assert "wrong" not in str(e.value)  # the password is not echoed
        # the next calls, during the backoff, fail the same way at once
        t0 = time.monotonic()
        for _ in range(5):
            with pytest.raises(ConnectionFailed):
                c.query("SELECT 1")
        assert time.monotonic() - t0 < 1.0
        assert c.connects == 1  # the worker itself is fine: never restarted


def test_wrong_password_is_not_hammered(worker):
    """Calls arriving during the backoff fail fast without new attempts:
    the server sees few authentication failures for many calls."""
    dsn = with_password(pg_dsn("MOLT_TEST_DSN_SCRAM"), "wrong")
    before = server_log_failures('password authentication failed for user "molt_scram"')
    if before is None:
        pytest.skip("MOLT_TEST_PGLOG is not set")
    with MoltClient([worker, "--stdio", "--db", f"default={dsn}"]) as c:
        for _ in range(40):
            with pytest.raises(ConnectionFailed):
                c.query("SELECT 1")
    time.sleep(0.2)  # the server's log is written asynchronously
    after = server_log_failures('password authentication failed for user "molt_scram"')
    assert 1 <= after - before <= 5


def test_async_client_gets_the_connect_error_at_once(worker):
    dsn = with_database(pg_dsn(), "no_such_database")

    async def main():
        async with AsyncMoltClient([worker, "--stdio", "--db", f"default={dsn}"]) as ac:
            t0 = time.monotonic()
            results = await asyncio.gather(*(ac.query("SELECT 1") for _ in range(20)), return_exceptions=True)
            assert time.monotonic() - t0 < 3.0
            assert all(isinstance(r, ConnectionFailed) and r.sqlstate == "3D000" for r in results), results

    asyncio.run(main())


def test_query_errors_stay_db_errors(worker):
    with MoltClient([worker, "--stdio", "--db", f"default={pg_dsn('MOLT_TEST_DSN_APP')}"]) as c:
        with pytest.raises(DbError) as e:
            c.query("SELECT 1 / 0")
        assert not isinstance(e.value, ConnectionFailed)
        assert e.value.sqlstate == "22012"


BAD_STARTS = [
    (["--stdio", "--db", "default=postgresql://molt@127.0.0.1/x?sslmod=require"], "sslmod"),
    (["--stdio", "--db", "default=mysql://molt@127.0.0.1/x"], "unrecognised DSN"),
    (["--db", "default=sqlite::memory:"], "--stdio"),
    (["--stdio", "--db", "default=sqlite://app.db"], "sqlite DSN must be"),
]


@pytest.mark.parametrize("args,part", BAD_STARTS, ids=["sslmod", "mysql", "no-stdio", "sqlite-2-slashes"])
@pytest.mark.parametrize("stderr", [None, subprocess.DEVNULL], ids=["inherit", "devnull"])
def test_worker_that_cannot_start_says_why(worker, args, part, stderr, capfd):
    with MoltClient([worker] + args, worker_stderr=stderr) as c:
        with pytest.raises(WorkerStartError) as e:
            c.query("SELECT 1")
        assert isinstance(e.value, WorkerUnavailable)
        assert part in e.value.stderr and part in str(e.value)
        assert e.value.exit_status == 2
        assert c.connects == 1  # not restarted, not resent
    err = capfd.readouterr().err
    if stderr is None:
        assert err.count(part) == 1  # passed on, once
    else:
        assert part not in err


def test_async_worker_that_cannot_start_says_why(worker):
    async def main():
        async with AsyncMoltClient([worker, "--stdio", "--db", "default=mysql://x@h/db"],
                                   worker_stderr=subprocess.DEVNULL) as ac:
            with pytest.raises(WorkerStartError) as e:
                await ac.query("SELECT 1")
            assert "unrecognised DSN" in e.value.stderr
            assert ac.connects == 1
            with pytest.raises(WorkerStartError):
                async with ac.stream("SELECT 1") as s:
                    [r async for r in s]

    asyncio.run(main())


def test_a_worker_that_dies_later_is_still_restarted(worker, tmp_path):
    with MoltClient([worker, "--stdio", "--db", f"default=sqlite:///{tmp_path}/a.db"]) as c:
        c.query("SELECT 1")
        os.kill(c.worker_pid, 9)
        assert c.query("SELECT 2").rows == [(2,)]
        assert c.connects == 2


def test_async_stream_works_with_and_without_await(worker, tmp_path):
    async def main():
        async with AsyncMoltClient([worker, "--stdio", "--db", f"default=sqlite:///{tmp_path}/s.db"]) as ac:
            sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT x FROM c"
            async with ac.stream(sql, batch_rows=2) as s:
                a = [r async for r in s]
            async with await ac.stream(sql, batch_rows=2) as s:
                b = [r async for r in s]
            assert a == b == [(i,) for i in range(1, 6)]
            # leaving early cancels; the client stays usable
            async with ac.stream(sql, batch_rows=1) as s:
                async for _ in s:
                    break
            assert (await ac.query("SELECT 7")).rows == [(7,)]

    asyncio.run(main())


@pytest.mark.parametrize("sql", ["SELECT %s", "SELECT ?"])
def test_foreign_placeholders_get_a_hint(worker, tmp_path, sql):
    with MoltClient([worker, "--stdio", "--db", f"default=sqlite:///{tmp_path}/p.db"]) as c:
        with pytest.raises(InvalidInput) as e:
            c.query(sql, [1])
        assert "$1" in str(e.value) and "not %s or ?" in str(e.value)


def test_to_arrow_without_pyarrow_names_the_extra(worker, tmp_path):
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from molt_db_adapter import MoltClient\n"
        f"c = MoltClient([{worker!r}, '--stdio', '--db', 'default=sqlite::memory:'])\n"
        "try:\n"
        "    c.query('SELECT 1 AS a').to_arrow()\n"
        "except ImportError as e:\n"
        "    print('ERR', e)\n"
        "c.close()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "ERR" in out.stdout, out.stderr
    assert "molt-db[arrow]" in out.stdout
