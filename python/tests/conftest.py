"""Shared test setup: make python/ importable when pytest runs without
PYTHONPATH (scripts/test.sh sets it; a bare `pytest python/tests` does not)."""

import pathlib
import sys

_PY = str(pathlib.Path(__file__).resolve().parents[1])
if _PY not in sys.path:
    sys.path.insert(0, _PY)
