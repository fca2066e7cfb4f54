"""Which binary a bare `molt_worker` in a client's command starts
(molt_db_adapter.worker_path): $MOLT_WORKER_BIN, the bundled one, PATH.
Each test starts the real worker (MOLT_WORKER_BIN of scripts/test.sh) under a
name and checks the client really talked to it."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

from molt_db_adapter import MoltClient, WorkerUnavailable
from molt_db_adapter import worker_path as wp

BUILT = os.environ.get("MOLT_WORKER_BIN") or os.path.join(
    os.environ.get("MOLT_BUILD_DIR", "build"), "molt_worker")

pytestmark = pytest.mark.skipif(not os.access(BUILT, os.X_OK), reason=f"no worker at {BUILT}")


def answer(db: pathlib.Path) -> list[tuple[object, ...]]:
    with MoltClient(["molt_worker", "--stdio", "--db", f"default=sqlite:///{db}"]) as c:
        return c.query("SELECT 6 * 7").rows


@pytest.fixture
def no_bundled(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    """A checkout: no worker inside the package (whatever this tree holds)."""
    monkeypatch.setattr(wp, "BUNDLED_WORKER", str(tmp_path / "absent" / "molt_worker"))


def test_env_var_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, no_bundled: None) -> None:
    monkeypatch.setenv("MOLT_WORKER_BIN", BUILT)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    assert wp.resolve_worker_cmd(["molt_worker", "--stdio"]) == [BUILT, "--stdio"]
    assert answer(tmp_path / "a.db") == [(42,)]


def test_bundled_worker_before_path(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    bundled = tmp_path / "pkg" / "bin" / "molt_worker"
    bundled.parent.mkdir(parents=True)
    shutil.copy(BUILT, bundled)
    decoy = tmp_path / "onpath" / "molt_worker"
    decoy.parent.mkdir()
    decoy.write_text("#!/bin/sh\nexit 3\n")
    decoy.chmod(0o755)
    monkeypatch.delenv("MOLT_WORKER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(decoy.parent))
    monkeypatch.setattr(wp, "BUNDLED_WORKER", str(bundled))
    assert wp.worker_path() == str(bundled)
    assert answer(tmp_path / "b.db") == [(42,)]


def test_path_is_the_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, no_bundled: None) -> None:
    onpath = tmp_path / "onpath"
    onpath.mkdir()
    (onpath / "molt_worker").symlink_to(os.path.abspath(BUILT))
    monkeypatch.delenv("MOLT_WORKER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(onpath))
    assert wp.worker_path() == str(onpath / "molt_worker")
    assert answer(tmp_path / "c.db") == [(42,)]


def test_no_worker_anywhere_is_worker_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path,
                                                  no_bundled: None) -> None:
    monkeypatch.delenv("MOLT_WORKER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(WorkerUnavailable, match="molt_worker"):
        answer(tmp_path / "d.db")


def test_a_path_runs_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLT_WORKER_BIN", "/nonexistent/elsewhere")
    assert wp.resolve_worker_cmd(["./molt_worker", "-x"]) == ["./molt_worker", "-x"]
    assert wp.resolve_worker_cmd([BUILT]) == [BUILT]
