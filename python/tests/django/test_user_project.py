"""A user's own `manage.py test` with offloading on: Django's default test
settings (SQLite without TEST NAME: an in-memory test database) fall back to
the ORM with a reason and pass; on PostgreSQL the reads go to the worker and
see the test database's rows."""
import os
import subprocess
import sys

import pytest

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "userproject")


def run_tests(tmp_path, **env):
    e = dict(os.environ, MOLT_USERPROJECT_DIR=str(tmp_path), **env)
    e.pop("DJANGO_SETTINGS_MODULE", None)
    # absolute: the command runs in the project's folder
    paths = [HERE] + [os.path.abspath(p) for p in e.get("PYTHONPATH", "").split(os.pathsep) if p]
    e["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run([sys.executable, "manage.py", "test", "--noinput", "-v", "2"], cwd=HERE,
                          env=e, capture_output=True, text=True, timeout=120)


def test_default_sqlite_test_settings(tmp_path):
    r = run_tests(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Ran 2 tests" in r.stderr and "OK" in r.stderr
    # the in-memory test database cannot be read by the worker: a fallback with its reason
    assert "EVENTS [(False, " in r.stdout and "in-memory" in r.stdout, r.stdout
    assert not os.path.exists(tmp_path / "db.sqlite3"), "the worker created the non-test database"


@pytest.mark.skipif(not os.environ.get("MOLT_TEST_DSN"), reason="needs MOLT_TEST_DSN")
def test_postgresql_test_database(tmp_path):
    r = run_tests(tmp_path, MOLT_USERPROJECT_PG=os.environ["MOLT_TEST_DSN"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Ran 2 tests" in r.stderr and "OK" in r.stderr
    assert "EVENTS [(True, '')]" in r.stdout, r.stdout
