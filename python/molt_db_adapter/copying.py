"""copy_in and copy_out (docs/ipc-contract.md sections 13 and 14): their
calls, without I/O.

copy_in sends the rows in one request: the worker writes them into the
table with one COPY FROM STDIN in one transaction (all or none). Rows are
sequences of values encoded as parameters are (None, bool, int, float, str,
bytes, Decimal, UUID, date/time, lists for arrays), or a ``pyarrow.Table``,
whose columns are read into such rows here (the Arrow data is not sent as
Arrow). One request is bounded by the worker's ``max_request_bytes`` (16 MiB
by default): split larger inputs, each call then its own transaction.

copy_out is a db_query whose rows come through COPY TO STDOUT on the
server: the same QueryResult (``rows``, ``to_arrow()`` with
``result_format="arrow_ipc"``).
"""

from __future__ import annotations

import collections.abc
import dataclasses
from typing import Any, Optional, Sequence, Union

from .calls import Call
from .errors import InvalidInput
from .params import encode_value

__all__ = ["copy_in_payload", "copy_in_call", "as_copy_out"]

Table = Union[str, Sequence[str]]

_PLAIN = frozenset((int, float, str, bool, type(None), bytes))
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _bad(msg: str) -> InvalidInput:
    return InvalidInput(f"copy_in(): {msg}", client_side=True)


def _is_arrow(rows: Any) -> bool:
    return hasattr(rows, "column_names") and hasattr(rows, "columns") and hasattr(rows, "num_rows")


def _rows_of(rows: Any, columns: Optional[Sequence[str]]) -> tuple[Any, Optional[list[str]]]:
    """Plain rows and the column names they go to."""
    if _is_arrow(rows):
        names = list(rows.column_names)
        if columns is not None and list(columns) != names:
            rows = rows.select(list(columns))
            names = list(columns)
        return zip(*(c.to_pylist() for c in rows.columns)), names
    if isinstance(rows, (str, bytes)) or isinstance(rows, collections.abc.Mapping):
        raise _bad("rows must be a sequence of rows or a pyarrow.Table")
    return rows, None if columns is None else list(columns)


def copy_in_payload(table: Table, rows: Any, *, columns: Optional[Sequence[str]],
                    db_alias: str) -> dict[str, Any]:
    """The copy_in payload; InvalidInput names the row and value at fault."""
    if isinstance(table, str):
        target: Any = table
    elif isinstance(table, (list, tuple)) and len(table) == 2 and all(isinstance(t, str) for t in table):
        target = list(table)
    else:
        raise _bad("table must be a str or a (schema, table) pair")
    plain, names = _rows_of(rows, columns)
    if names is not None and (not names or not all(isinstance(n, str) for n in names)):
        raise _bad("columns must be a non-empty list of str")
    out = []
    for i, row in enumerate(plain):
        if isinstance(row, (str, bytes)) or not isinstance(row, collections.abc.Sequence):
            raise _bad(f"rows[{i}] is a {type(row).__name__}, not a sequence of values")
        # the common plain values as they are; everything else (and an int
        # out of int64) through the parameter encoder and its checks
        out.append([v if type(v) in _PLAIN and (type(v) is not int or _I64_MIN <= v <= _I64_MAX)
                    else encode_value(v, f"rows[{i}][{k}]") for k, v in enumerate(row)])
    p: dict[str, Any] = {"db_alias": db_alias, "table": target, "rows": out, "allow_write": True}
    if names is not None:
        p["columns"] = names
    return p


def copy_in_call(table: Table, rows: Any, *, columns: Optional[Sequence[str]], db_alias: str,
                 timeout_ms: Optional[int]) -> Optional[Call]:
    """None when there are no rows (nothing to send)."""
    payload = copy_in_payload(table, rows, columns=columns, db_alias=db_alias)
    if not payload["rows"]:
        return None
    return Call("copy_in", payload, timeout_ms, False, "exec")


def as_copy_out(query: Call) -> Call:
    """The copy_out of a db_query call: same payload (one sql, no params: the
    worker refuses params) and the same QueryResult."""
    return dataclasses.replace(query, entry="copy_out")
