"""Which molt_worker binary runs when a worker command names just ``molt_worker``.

``MoltClient(["molt_worker", "--stdio", ...])`` runs, in this order:

1. ``$MOLT_WORKER_BIN`` when it is set and not empty;
2. the worker inside this package (``molt_db_adapter/bin/molt_worker``, put
   there by ``pip install ./python``);
3. ``molt_worker`` found on ``PATH``.

Any other first argument (a path such as ``build/molt_worker``) runs as given.
The ``molt-worker`` console script is ``main`` below: the same binary, with the
script's arguments.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import NoReturn, Sequence

WORKER_NAME = "molt_worker"
BUNDLED_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", WORKER_NAME)


def worker_path() -> str:
    """The binary that ``molt_worker`` means here; the bare name when none is
    found (starting it then fails with the client's WorkerUnavailable)."""
    env = os.environ.get("MOLT_WORKER_BIN")
    if env:
        return env
    if os.access(BUNDLED_WORKER, os.X_OK):
        return BUNDLED_WORKER
    return shutil.which(WORKER_NAME) or WORKER_NAME


def resolve_worker_cmd(worker_cmd: Sequence[str]) -> list[str]:
    """``worker_cmd`` with a bare ``molt_worker`` replaced by ``worker_path()``."""
    cmd = list(worker_cmd)
    if cmd and cmd[0] == WORKER_NAME:
        cmd[0] = worker_path()
    return cmd


def main() -> NoReturn:
    """The ``molt-worker`` console script: exec the worker with our arguments."""
    path = worker_path()
    try:
        os.execv(path, [path, *sys.argv[1:]])
    except OSError as e:
        sys.stderr.write(f"molt-worker: cannot run {path!r}: {e}\n"
                         "(install molt-db with `pip install ./python`, or set MOLT_WORKER_BIN)\n")
        sys.exit(127)
