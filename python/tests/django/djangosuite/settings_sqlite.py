"""Django's test suite on SQLite files (the worker cannot share an
in-memory database, Django's default test database)."""

import os
import tempfile

from settings_common import *  # noqa: F401,F403
from settings_common import engine

_dir = tempfile.mkdtemp(prefix="molt-djsuite-")
DATABASES = {
    alias: {"ENGINE": engine("sqlite3"), "NAME": os.path.join(_dir, f"{alias}.db"),
            "TEST": {"NAME": os.path.join(_dir, f"test_{alias}.db")}}
    for alias in ("default", "other")
}
