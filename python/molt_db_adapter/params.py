"""Parameters: checked against the statement's placeholders and converted to
the contract's forms before anything is sent.

Accepted values: None, bool, int (signed 64-bit), float, str, bytes-like;
Decimal, UUID and date/time values are sent as their text form (an untyped
str binds the way a literal would). A list or tuple of such values is an
array (nested lists: dimensions; the worker builds PostgreSQL's array
literal). ``Typed(value, "type")`` sends an explicit type. A None without a
type is sent with type ``unknown``.
"""

from __future__ import annotations

import collections.abc
import datetime
import decimal
import uuid
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

from .errors import InvalidInput
from .placeholders import scan_placeholders

__all__ = ["Typed", "encode_params", "Params"]

Params = Union[Sequence[Any], Mapping[str, Any], None]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: PostgreSQL's limit on array dimensions (also the worker's)
MAX_ARRAY_DIMS = 6


@dataclass(frozen=True)
class Typed:
    """A value with an explicit database type name (``Typed(None, "int4")``,
    ``Typed("{}", "jsonb")``)."""

    value: Any
    type: str


def _bad(msg: str) -> InvalidInput:
    return InvalidInput(msg, client_side=True)


def _array(v: Any, where: str, depth: int) -> list[Any]:
    """A list or tuple as an array value; the worker checks the shape and
    element types (one type, rectangular), this only bounds the nesting."""
    if depth >= MAX_ARRAY_DIMS:
        raise _bad(f"parameter {where}: an array has more than {MAX_ARRAY_DIMS} dimensions")
    return [
        _array(e, where, depth + 1) if isinstance(e, (list, tuple)) else _value(e, where, depth + 1)
        for e in v
    ]


def _value(v: Any, where: str, depth: int = 0) -> Any:
    if v is None or isinstance(v, (bool, float)):
        return v
    if isinstance(v, int):
        if not INT64_MIN <= v <= INT64_MAX:
            raise _bad(f"parameter {where}: {v} is outside the signed 64-bit range")
        return v
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as e:
            raise _bad(f"parameter {where}: the str is not valid UTF-8 ({e.reason} at {e.start})") from None
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, (list, tuple)) and depth == 0:
        return _array(v, where, 0)
    raise _bad(
        f"parameter {where}: a {type(v).__name__} cannot be sent (use None, bool, int, "
        "float, str, bytes, Decimal, UUID, a date/time, a list of them, or "
        "Typed(value, 'type'))"
    )


def encode_value(v: Any, where: str) -> Any:
    """One value as a parameter is sent (arrays included), for payloads that
    carry values outside params (copy_in rows); ``where`` names it in errors."""
    return _value(v, where)


def _entry(v: Any, where: str) -> Any:
    """One positional entry: a plain value or {"value", "type"}."""
    if isinstance(v, Typed):
        if not isinstance(v.type, str) or not v.type:
            raise _bad(f"parameter {where}: Typed needs a type name")
        return {"value": _value(v.value, where), "type": v.type}
    if v is None:
        return {"value": None, "type": "unknown"}
    return _value(v, where)


def encode_params(sql: str, params: Params) -> Optional[dict[str, Any]]:
    """The contract's ``params`` map for ``sql`` (None when there are no
    parameters), or InvalidInput naming the placeholder or value at fault."""
    found = scan_placeholders(sql)
    if params is None:
        if found.positional:
            raise _bad(f"placeholder ${min(found.positional)} has no value: params is None")
        if found.named:
            raise _bad(f"placeholder :{min(found.named)} has no value: params is None")
        return None
    # collections.abc, not typing: isinstance against a typing alias costs
    # microseconds on every call
    if not isinstance(params, (list, tuple)) and isinstance(params, collections.abc.Mapping):
        if found.positional:
            raise _bad(
                f"params is a mapping (named) but the SQL uses ${min(found.positional)}; "
                "pass a list for $n placeholders"
            )
        for key in params:
            if not isinstance(key, str):
                raise _bad(f"named parameter keys must be str, got {key!r}")
        missing = sorted(found.named - set(params))
        if missing:
            raise _bad(f"placeholder :{missing[0]} has no value in params")
        unused = sorted(set(params) - found.named)
        if unused:
            raise _bad(f"parameter {unused[0]!r} is not used by the SQL (no :{unused[0]})")
        values = []
        for name in sorted(params):
            v = params[name]
            where = f":{name}"
            if isinstance(v, Typed):
                values.append({"name": name, "value": _value(v.value, where), "type": v.type})
            elif v is None:
                values.append({"name": name, "value": None, "type": "unknown"})
            else:
                values.append({"name": name, "value": _value(v, where)})
        return {"mode": "named", "values": values}
    if not isinstance(params, (list, tuple)) and (
        isinstance(params, (str, bytes)) or not isinstance(params, collections.abc.Sequence)
    ):
        raise _bad(
            f"params must be a list or tuple (for $n) or a mapping (for :name), "
            f"not {type(params).__name__}"
        )
    if found.named:
        raise _bad(
            f"params is a list (positional) but the SQL uses :{min(found.named)}; "
            "pass a mapping for :name placeholders"
        )
    n = len(params)
    for k in sorted(found.positional):
        if k < 1 or k > n:
            raise _bad(f"placeholder ${k} has no value: {n} parameter(s) given")
    for k in range(1, n + 1):
        if k not in found.positional:
            hint = ""
            if not found.positional and ("%s" in sql or "?" in sql):
                hint = "; write placeholders as $1, $2, ... (not %s or ?)"
            raise _bad(f"parameter ${k} is not used by the SQL ({n} given){hint}")
    return {"mode": "positional", "values": [_entry(v, f"${i + 1}") for i, v in enumerate(params)]}
