"""Finding the placeholders of a statement the way the worker does:
``$1`` (positional) and ``:name`` (named), never inside string literals,
quoted identifiers, comments or dollar-quoted strings, and never a ``::``
cast."""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["Placeholders", "scan_placeholders"]


@dataclass(frozen=True)
class Placeholders:
    positional: frozenset[int]
    named: frozenset[str]


def _ident_start(ch: str) -> bool:
    return ch.isalpha() or ch == "_"


def _ident_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or ch == "$"


@functools.lru_cache(maxsize=1024)
def scan_placeholders(sql: str) -> Placeholders:
    """Cached: an application sends the same few statements over and over,
    and this scan is the costliest step of preparing a call."""
    positional: set[int] = set()
    named: set[str] = set()
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "'":
            # E'...' allows backslash escapes
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _ident_char(sql[i - 2]))
            i += 1
            while i < n:
                if escapes and sql[i] == "\\":
                    i += 2
                    continue
                if sql[i] == "'":
                    if i + 1 < n and sql[i + 1] == "'":
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif ch == '"':
            i += 1
            while i < n:
                if sql[i] == '"':
                    if i + 1 < n and sql[i + 1] == '"':
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif ch == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif ch == "/" and sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif ch == "$":
            if i > 0 and _ident_char(sql[i - 1]):
                i += 1  # part of an identifier such as a$1
                continue
            j = i + 1
            if j < n and sql[j].isdigit():
                while j < n and sql[j].isdigit():
                    j += 1
                positional.add(int(sql[i + 1 : j]))
                i = j
                continue
            # a dollar quote: $$ or $tag$
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            if j < n and sql[j] == "$" and (j == i + 1 or _ident_start(sql[i + 1])):
                tag = sql[i : j + 1]
                end = sql.find(tag, j + 1)
                i = n if end < 0 else end + len(tag)
                continue
            i += 1
        elif ch == ":":
            if sql.startswith("::", i):
                i += 2
                continue
            if i > 0 and sql[i - 1] == ":":
                i += 1
                continue
            j = i + 1
            if j < n and _ident_start(sql[j]) and sql[j].isascii():
                while j < n and (sql[j].isascii() and (sql[j].isalnum() or sql[j] == "_")):
                    j += 1
                named.add(sql[i + 1 : j])
                i = j
                continue
            i += 1
        else:
            i += 1
    return Placeholders(frozenset(positional), frozenset(named))
