"""`make wheel` gives a package that runs on its own: installed into a fresh
venv and used from a folder outside the checkout, with no PYTHONPATH, no
MOLT_WORKER_BIN and no build/ on PATH, `molt_worker` in a client's command
means the worker inside the package, and it answers on SQLite and PostgreSQL.

Run by the `wheel` stage of scripts/test.sh (inside scripts/with_pg.sh, which
exports MOLT_TEST_DSN). Slow (builds the worker): not in the pytest stage.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]

# What the program in the fresh venv does; it prints one JSON line.
CLIENT_PROGRAM = textwrap.dedent("""
    import json, os, sys
    from molt_db_adapter import MoltClient
    from molt_db_adapter.worker_path import worker_path

    from molt_db_adapter import c_rows

    out = {"worker": worker_path(), "module": __import__("molt_db_adapter").__file__,
           "c_rows": getattr(c_rows.decoder, "__file__", None)}
    db = os.path.abspath("app.db")
    cmd = ["molt_worker", "--stdio", "--db", "default=sqlite:///" + db, "--allow-write", "default"]
    with MoltClient(cmd) as c:
        c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        c.execute("INSERT INTO t (id, name) VALUES ($1, $2), ($3, $4)", [1, "ada", 2, "bob"])
        out["sqlite"] = [list(r) for r in c.query("SELECT id, name FROM t ORDER BY id").rows]
    dsn = sys.argv[1]
    with MoltClient(["molt_worker", "--stdio", "--db", "default=" + dsn]) as c:
        out["postgres"] = [list(r) for r in c.query("SELECT 41 + $1::int AS answer", [1]).rows]
    # the in-process client: the extension module shipped in the wheel
    from molt_db_adapter import InProcessClient, _host
    out["extension"] = _host.__file__
    with InProcessClient(["--db", "default=" + dsn]) as c:
        out["inprocess"] = [list(r) for r in c.query("SELECT 40 + $1::int AS answer", [2]).rows]
    print(json.dumps(out))
""")


def clean_env(venv: pathlib.Path) -> dict[str, str]:
    """The environment of a user who only ran `pip install`: nothing of the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MOLT_WORKER", "MOLT_BUILD", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A fresh venv with the wheel of `make wheel` installed; returns the venv.
    The wheel is for the Python running this test (cp311 from .venv, cp313
    from a 3.13 venv: docs/python.md)."""
    subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "wheel",
                    f"PYTHON={sys.executable}"], check=True)
    wheels = sorted((ROOT / "dist").glob("molt_db-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp_path_factory.mktemp("wheel") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # msgpack comes from pip's cache (or the index) as for any user
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(wheels[0])],
                   check=True, env=clean_env(venv))
    return venv


def test_the_wheel_runs_queries_on_sqlite_and_postgres(installed: pathlib.Path, tmp_path: pathlib.Path) -> None:
    # a role without superuser, over verify-full TLS: the statically linked
    # OpenSSL checks the server's certificate
    dsn = os.environ.get("MOLT_TEST_CERT_DSN")
    if not dsn:
        pytest.skip("MOLT_TEST_CERT_DSN is not set (run under scripts/with_pg.sh)")
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "client.py").write_text(CLIENT_PROGRAM)
    r = subprocess.run([str(installed / "bin" / "python"), "client.py", dsn], cwd=work,
                       env=clean_env(installed), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    site = installed / "lib"
    # the package and the worker it ran both come from the venv, not the checkout
    assert pathlib.Path(out["module"]).is_relative_to(site), out
    assert pathlib.Path(out["worker"]).is_relative_to(site), out
    assert out["worker"].endswith("molt_db_adapter/bin/molt_worker")
    # the C row decoder came with the wheel, built for this interpreter
    assert out["c_rows"] and pathlib.Path(out["c_rows"]).is_relative_to(site), out
    assert out["sqlite"] == [[1, "ada"], [2, "bob"]]
    assert out["postgres"] == [[42]]
    assert pathlib.Path(out["extension"]).is_relative_to(site), out
    assert out["inprocess"] == [[42]]
    # what the worker wrote is in the file, where sqlite3 (not molt) reads it
    import sqlite3
    with sqlite3.connect(work / "app.db") as con:
        assert con.execute("SELECT name FROM t ORDER BY id").fetchall() == [("ada",), ("bob",)]


def test_the_console_script_runs_the_bundled_worker(installed: pathlib.Path, tmp_path: pathlib.Path) -> None:
    r = subprocess.run([str(installed / "bin" / "molt-worker"), "--help"], cwd=tmp_path,
                       env=clean_env(installed), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "--allow-write" in r.stdout + r.stderr


#: glibc's own libraries (manylinux allows them all), the loader among them
GLIBC = {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"}


def test_the_bundled_worker_needs_only_libc(installed: pathlib.Path) -> None:
    """libuv, msgpack-c, SQLite, PCRE2 and OpenSSL are linked in: a machine
    without their packages (let alone the -dev ones) runs the worker."""
    workers = list((installed / "lib").glob("python3*/site-packages/molt_db_adapter/bin/molt_worker"))
    assert len(workers) == 1, workers
    needed = subprocess.run(["readelf", "-d", str(workers[0])], check=True,
                            capture_output=True, text=True).stdout
    libs = sorted(line.split("[", 1)[1].rstrip("]") for line in needed.splitlines() if "(NEEDED)" in line)
    assert set(libs) <= GLIBC, libs


def test_the_bundled_extension_needs_libc_and_libuv(installed: pathlib.Path) -> None:
    """The extension links msgpack-c, SQLite, PCRE2 and OpenSSL in, libuv
    from the system (libuv1: Debian's static libuv is not position
    independent, python/ext/CMakeLists.txt)."""
    mods = list((installed / "lib").glob("python3*/site-packages/molt_db_adapter/_host.*.so"))
    assert len(mods) == 1, mods
    needed = subprocess.run(["readelf", "-d", str(mods[0])], check=True,
                            capture_output=True, text=True).stdout
    libs = sorted(line.split("[", 1)[1].rstrip("]") for line in needed.splitlines() if "(NEEDED)" in line)
    assert set(libs) <= GLIBC | {"libuv.so.1"}, libs
