"""Result decoding options: numeric values as ``Decimal`` or ``str``, json
and jsonb values parsed or left as the worker's format gives them.

The worker sends numeric as its exact text in every format (a float would
round it). json/jsonb arrive as text in MsgPack and already parsed in JSON
results, so ``decode_json=True`` parses only MsgPack text. Arrays of these
types (``_numeric``, ``_jsonb``) are converted element by element.
"""

from __future__ import annotations

import decimal
import json
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .errors import InvalidInput

__all__ = ["Decoding", "DEFAULT_DECODING", "NUMERIC_MODES", "convert_row"]

NUMERIC_MODES = ("str", "decimal")

Convert = Callable[[Any], Any]


def _deep(f: Convert) -> Convert:
    """f on a value, or on every element of a (nested) array value."""

    def conv(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, list):
            return [conv(e) for e in v]
        return f(v)

    return conv


def _to_decimal(v: Any) -> Any:
    return decimal.Decimal(v) if isinstance(v, str) else v


def _parse_json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


_DECIMAL = _deep(_to_decimal)
_JSON = _deep(_parse_json)


@dataclass(frozen=True)
class Decoding:
    numeric: str = "str"
    json: bool = False

    @staticmethod
    def checked(numeric: str, parse_json: bool) -> "Decoding":
        if numeric not in NUMERIC_MODES:
            raise InvalidInput(f"decode_numeric must be 'str' or 'decimal', not {numeric!r}", client_side=True)
        if not isinstance(parse_json, bool):
            raise InvalidInput("decode_json must be True or False", client_side=True)
        return Decoding(numeric, parse_json)

    def override(self, numeric: Optional[str], parse_json: Optional[bool]) -> "Decoding":
        """This decoding with a call's own options (None: the client's)."""
        if numeric is None and parse_json is None:
            return self
        return Decoding.checked(self.numeric if numeric is None else numeric,
                                self.json if parse_json is None else parse_json)

    def converters(self, types: Sequence[str], codec: str) -> Optional[list[Optional[Convert]]]:
        """One converter per column (None: as received), or None when no
        column needs one."""
        out: list[Optional[Convert]] = []
        for t in types:
            base = t[1:] if t.startswith("_") else t
            if base == "numeric" and self.numeric == "decimal":
                out.append(_DECIMAL)
            elif base in ("json", "jsonb") and self.json and codec == "msgpack":
                out.append(_JSON)
            else:
                out.append(None)
        return out if any(out) else None


def convert_row(row: tuple[Any, ...], convs: Sequence[Optional[Convert]]) -> tuple[Any, ...]:
    return tuple(v if f is None else f(v) for v, f in zip(row, convs))


DEFAULT_DECODING = Decoding()
