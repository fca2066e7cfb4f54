"""Results: the payload bytes as received (``raw``) and, decoded on first
use, columns, types and rows; the worker's metrics."""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional

from . import c_rows
from .decoding import DEFAULT_DECODING, Decoding, convert_row
from .envelope import unpackb
from .errors import ProtocolError

__all__ = ["QueryResult", "ExecResult", "decode_payload", "arrow_table_from_ipc", "arrow_table_from_chunks",
           "arrow_c_stream"]


def decode_payload(codec: Optional[str], raw: bytes) -> Any:
    if codec == "msgpack":
        return unpackb(raw)
    if codec == "json":
        return json.loads(raw)
    raise ProtocolError(f"cannot decode a payload with codec {codec!r} as a map")


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401 (a submodule, loaded for its callers)
    except ImportError:
        raise ImportError(
            "to_arrow() needs pyarrow, an optional extra: pip install 'molt-db[arrow]'"
        ) from None
    return pyarrow


def arrow_table_from_ipc(raw: Any) -> Any:
    """A pyarrow Table from an Arrow IPC stream in ``raw`` (bytes, or a
    memoryview into an in-process host's frame): its buffers reference
    ``raw``'s memory, not a copy of it."""
    pa = _pyarrow()
    return pa.ipc.open_stream(pa.py_buffer(raw)).read_all()


def arrow_table_from_chunks(chunks: list[Any]) -> Any:
    """A pyarrow Table from a streamed result's payloads, each holding
    whole IPC messages (the schema, then record batches, then the
    end-of-stream marker), read where they are rather than joined."""
    pa = _pyarrow()
    schema = None
    batches = []
    for chunk in chunks:
        reader = pa.ipc.MessageReader.open_stream(pa.BufferReader(pa.py_buffer(chunk)))
        for msg in reader:
            if msg.type == "schema":
                schema = pa.ipc.read_schema(msg)
            elif schema is None:
                raise ProtocolError(f"an Arrow IPC {msg.type} message came before the schema")
            else:
                batches.append(pa.ipc.read_record_batch(msg, schema))
    if schema is None:
        raise ProtocolError("the Arrow IPC stream had no schema")
    return pa.Table.from_batches(batches, schema)


def arrow_c_stream(chunks: list[Any]) -> Any:
    """An ``arrow_array_stream`` PyCapsule of the Arrow IPC stream in
    ``chunks`` read in C (``c_rows.arrow_stream``), or None without the C
    extension; malformed bytes raise ProtocolError."""
    try:
        return c_rows.arrow_stream(chunks)
    except ValueError as e:
        raise ProtocolError(str(e)) from None


def _row_tuple(row: Any, columns: list[str]) -> tuple[Any, ...]:
    if isinstance(row, dict):
        return tuple(row.get(c) for c in columns)
    return tuple(row)


class QueryResult:
    """A db_query result.

    ``raw`` is the payload exactly as the worker sent it (JSON text, MsgPack
    or an Arrow IPC stream): hand it on untouched. ``columns``, ``types``,
    ``rows`` (tuples), ``dicts()``, ``row_count`` and ``truncated`` decode it
    on first use, numeric and json/jsonb values as ``decoding`` says
    (decoding.py); ``to_arrow()`` gives a pyarrow Table.

    ``doc``: the payload as the C decoder decoded it already (``_c_doc``,
    done by the in-process client's C caller with the call); ``metrics``
    may be a ``_host.Metrics`` there, made into the dict when first read.
    """

    def __init__(
        self, codec: str, raw: bytes, metrics: Any, request_id: int,
        decoding: Decoding = DEFAULT_DECODING, doc: Optional[dict[str, Any]] = None,
    ) -> None:
        self.codec = codec
        self.raw = raw
        self._metrics = metrics
        self.request_id = request_id
        self.decoding = decoding
        self._decoded: Optional[dict[str, Any]] = doc
        self._rows: Optional[list[tuple[Any, ...]]] = None if doc is None else doc["rows"]
        self._arrow: Any = None

    @property
    def metrics(self) -> dict[str, Any]:
        """The worker's metrics of the call (db_alias, db_row_count, timings)."""
        metrics = self._metrics
        if not isinstance(metrics, dict) and callable(getattr(metrics, "dict", None)):
            metrics = self._metrics = metrics.dict()  # a _host.Metrics
        return metrics  # type: ignore[no-any-return]

    @metrics.setter
    def metrics(self, value: dict[str, Any]) -> None:
        self._metrics = value

    def __getstate__(self) -> dict[str, Any]:
        # pickle and copy see the metrics dict, not the _host.Metrics
        self.metrics  # noqa: B018 (made into the dict)
        return self.__dict__

    def _doc(self) -> dict[str, Any]:
        if self._decoded is None:
            if self.codec == "arrow_ipc":
                t = self.to_arrow()
                self._decoded = {
                    "columns": list(t.column_names),
                    "types": [str(f.type) for f in t.schema],
                    "rows": [tuple(r.values()) for r in t.to_pylist()],
                    "row_count": t.num_rows,
                    "truncated": False,
                }
            else:
                doc = self._c_doc()
                if doc is not None:
                    self._decoded = doc
                    self._rows = doc["rows"]
                    return doc
                doc = decode_payload(self.codec, self.raw)
                if not isinstance(doc, dict):
                    raise ProtocolError(f"result payload is a {type(doc).__name__}, not a map")
                self._decoded = doc
        return self._decoded

    def _c_doc(self, dicts: bool = False) -> Optional[dict[str, Any]]:
        """The doc with rows decoded and converted in C (c_rows.py), as
        tuples or as dicts, or None."""
        decoder = c_rows.decoder
        if self.codec != "msgpack" or decoder is None:
            return None
        # c_rows.decode's call, made here: a Python call fewer per result
        doc: Optional[dict[str, Any]] = decoder.decode_result(
            self.raw, None, numeric_decimal=self.decoding.numeric == "decimal", parse_json=self.decoding.json,
            dicts=dicts)
        return doc

    @property
    def columns(self) -> list[str]:
        return list(self._doc().get("columns", []))

    @property
    def types(self) -> list[str]:
        """The database's type names (``int8``, ``text``; Arrow type names
        for an arrow_ipc result)."""
        return list(self._doc().get("types", []))

    def _converters(self) -> Any:
        if self.codec == "arrow_ipc":
            return None
        return self.decoding.converters(self.types, self.codec)

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        if self._rows is None and self._decoded is None:
            self._doc()
        if self._rows is not None:
            return list(self._rows)
        rows = self._doc().get("rows", [])
        if self._rows is not None:
            return list(self._rows)
        if rows and not isinstance(rows[0], dict):
            out = list(map(tuple, rows))  # row_shape arrays: every row a list
        else:
            cols = self.columns
            out = [_row_tuple(r, cols) for r in rows]
        convs = self._converters()
        if convs is not None:
            out = [convert_row(r, convs) for r in out]
        self._rows = out
        return list(out)

    def dicts(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name (built in C from the
        payload when the C decoder takes it; a repeated name keeps the
        last column's value)."""
        doc = self._c_doc(dicts=True)
        if doc is not None:
            return doc["rows"]  # type: ignore[no-any-return]
        cols = self.columns
        if self._converters() is not None:
            return [dict(zip(cols, r)) for r in self.rows]
        out = []
        for r in self._doc().get("rows", []):
            out.append(dict(r) if isinstance(r, dict) else dict(zip(cols, r)))
        return out

    @property
    def row_count(self) -> int:
        doc = self._doc()
        return int(doc.get("row_count", len(doc.get("rows", []))))

    @property
    def truncated(self) -> bool:
        return bool(self._doc().get("truncated", False))

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self._doc().get("rows", []))

    def to_arrow(self) -> Any:
        """A pyarrow Table: read from the IPC stream for ``arrow_ipc``, else
        built from the decoded rows."""
        if self._arrow is None:
            if self.codec == "arrow_ipc":
                self._arrow = arrow_table_from_ipc(self.raw)
            else:
                pa = _pyarrow()
                cols = self.columns
                rows = self.rows
                self._arrow = pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})
        return self._arrow

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule interface: ``pa.table(result)``,
        ``pa.RecordBatchReader.from_stream(result)`` and other Arrow
        consumers (polars, DuckDB) take the result as an ArrowArrayStream.
        For ``arrow_ipc`` the ``_rows`` extension reads the IPC bytes in C
        and its arrays point into ``raw`` (no pyarrow needed here, nothing
        copied); otherwise, or without the extension, it is
        ``to_arrow()``'s Table's. ``requested_schema`` is not applied."""
        if self.codec == "arrow_ipc":
            capsule = arrow_c_stream([self.raw])
            if capsule is not None:
                return capsule
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def __repr__(self) -> str:
        return f"<QueryResult codec={self.codec} bytes={len(self.raw)}>"


class ExecResult:
    """A db_exec result: ``rows_affected``, ``last_insert_id`` (SQLite
    inserts), and ``columns``/``types``/``rows`` for RETURNING; with
    several statements, ``results`` holds one ExecResult each. RETURNING
    rows are decoded as ``decoding`` says (decoding.py)."""

    def __init__(
        self, doc: dict[str, Any], codec: str, raw: bytes, metrics: dict[str, Any], request_id: int,
        decoding: Decoding = DEFAULT_DECODING,
    ) -> None:
        self.codec = codec
        self.raw = raw
        self.metrics = metrics
        self.request_id = request_id
        self.rows_affected: Optional[int] = doc.get("rows_affected")
        self.last_insert_id: Optional[int] = doc.get("last_insert_id")
        self.columns: list[str] = list(doc.get("columns", []))
        self.types: list[str] = list(doc.get("types", []))
        self.rows: list[tuple[Any, ...]] = [_row_tuple(r, self.columns) for r in doc.get("rows", [])]
        convs = decoding.converters(self.types, codec)
        if convs is not None:
            self.rows = [convert_row(r, convs) for r in self.rows]
        self.results: list[ExecResult] = [
            ExecResult(d, codec, b"", {}, request_id, decoding)
            for d in doc.get("results", []) if isinstance(d, dict)
        ]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]

    def __repr__(self) -> str:
        return f"<ExecResult rows_affected={self.rows_affected}>"
