"""Compilation state: the dialect, the placeholder style and the collected values.

Values are only ever appended to ``params`` and replaced in the text by a
placeholder; nothing here writes a value into SQL text.
"""

from __future__ import annotations

from typing import Literal, Optional

from .dialect import Dialect
from .errors import BuildError

__all__ = ["Compiler", "ParamStyle", "Value"]

#: ``dollar``: $1, $2, ... (the worker, both dialects; asyncpg);
#: ``qmark``: ? (sqlite3); ``format``: %s (psycopg), with ``%`` in the
#: rest of the text doubled.
ParamStyle = Literal["dollar", "qmark", "format"]

#: What a parameter may hold (the worker accepts these; the adapter also
#: turns Decimal, UUID and date/time values into their text form).
Value = object


class Compiler:
    def __init__(self, dialect: Dialect, paramstyle: ParamStyle = "dollar") -> None:
        if paramstyle not in ("dollar", "qmark", "format"):
            raise BuildError(
                f"unknown paramstyle {paramstyle!r}: use 'dollar', 'qmark' or 'format'"
            )
        self.dialect = dialect
        self.paramstyle: ParamStyle = paramstyle
        self.params: list[Value] = []
        #: the FROM items of the enclosing queries, which a correlated
        #: subquery may refer to (Table._ref_key values)
        self.scope: tuple[tuple[Optional[str], str, Optional[str]], ...] = ()
        #: 0 while compiling the outermost statement (which writes WITH)
        self.depth = 0
        #: the CTE names the WITH clause defines
        self.cte_names: frozenset[str] = frozenset()
        #: False when compiling a fragment only to compare it (no checks
        #: that need the whole statement)
        self.check = True

    def param(self, value: Value) -> str:
        """Record a value; return its placeholder. Placeholders are numbered
        in text order and each is used once, so all three styles agree."""
        self.params.append(value)
        if self.paramstyle == "dollar":
            return f"${len(self.params)}"
        if self.paramstyle == "qmark":
            return "?"
        return "%s"

    def ident(self, name: str) -> str:
        quoted = self.dialect.quote_ident(name)
        if self.paramstyle == "format":
            quoted = quoted.replace("%", "%%")
        return quoted
