"""The C row decoder: the ``_rows`` extension (python/ext/rows) when it is
built, else None and the pure-Python path (results.py, decoding.py) serves.

``MOLT_DB_PURE_PYTHON=1`` in the environment turns it off (benchmarks and
the differential tests compare the two); tests may also set ``decoder``.
Both paths give the same values: the C one only takes MsgPack payloads
whose rows are arrays of one value per column, and answers None for
anything else, which the caller then decodes in Python.
"""

from __future__ import annotations

import os
from typing import Any, Optional

decoder: Optional[Any]
try:
    from . import _rows as decoder  # type: ignore[attr-defined,no-redef]
except ImportError:
    decoder = None
if os.environ.get("MOLT_DB_PURE_PYTHON") == "1":
    decoder = None


def decode(raw: bytes, types: Optional[list[str]] = None, **options: Any) -> Optional[dict[str, Any]]:
    """The result doc with ``rows`` as converted tuples, or None (no C
    decoder, or a shape the Python path decodes)."""
    if decoder is None:
        return None
    doc: Optional[dict[str, Any]] = decoder.decode_result(raw, types, **options)
    return doc


def arrow_stream(chunks: list[Any]) -> Any:
    """An ``arrow_array_stream`` PyCapsule of the Arrow IPC stream in
    ``chunks`` (buffers each holding whole messages), its arrays pointing
    into them; None without the C extension. ValueError (``ArrowIpcError``)
    for bytes that are not a stream it reads (docs/arrow.md)."""
    if decoder is None:
        return None
    return decoder.arrow_stream(chunks)


def unconvertible() -> type[Exception]:
    """The C decoder's Unconvertible (a ValueError), for callers that catch it."""
    return decoder.Unconvertible if decoder is not None else ValueError
