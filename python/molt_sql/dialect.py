"""SQL dialects: how identifiers are quoted and where PostgreSQL and SQLite differ."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, Union

from .errors import BuildError

__all__ = ["Dialect", "POSTGRES", "SQLITE", "get_dialect", "DialectName"]

DialectName = Literal["postgres", "postgresql", "sqlite"]


@dataclass(frozen=True)
class Dialect:
    """What a compiler needs to know about the target database."""

    name: str
    #: ILIKE exists (PostgreSQL); elsewhere lower(a) LIKE lower(b)
    has_ilike: bool
    #: startswith/endswith/contains compile to GLOB (case-sensitive, like
    #: PostgreSQL's LIKE) instead of LIKE, which is ASCII case-insensitive
    #: on SQLite
    prefix_match_with_glob: bool

    def quote_ident(self, name: str) -> str:
        """Quote one identifier: double quotes, embedded double quotes doubled."""
        if not isinstance(name, str):
            raise BuildError(f"an identifier must be a str, not {type(name).__name__}")
        return _quote(name)


@functools.lru_cache(maxsize=4096)
def _quote(name: str) -> str:
    """Cached: the same few names are quoted in every query."""
    if name == "":
        raise BuildError("an identifier must not be empty")
    if "\x00" in name:
        raise BuildError(f"identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


POSTGRES = Dialect(name="postgres", has_ilike=True, prefix_match_with_glob=False)
SQLITE = Dialect(name="sqlite", has_ilike=False, prefix_match_with_glob=True)


def get_dialect(dialect: Union[str, Dialect]) -> Dialect:
    """A Dialect from a name (``postgres``, ``postgresql``, ``sqlite``) or itself."""
    if isinstance(dialect, Dialect):
        return dialect
    if dialect in ("postgres", "postgresql"):
        return POSTGRES
    if dialect == "sqlite":
        return SQLITE
    raise BuildError(f"unknown dialect {dialect!r}: use 'postgres' or 'sqlite'")
