"""values() rows as dicts the compiler hands over.

Django's ValuesIterable makes each row's dict in Python, with a dict
comprehension over the row tuple. An offloaded read can have its rows
decoded straight into those dicts in C (the same key objects in the same
order, a repeated name keeping its first place and its last value), which
saves a tuple and a Python loop per row. use_compiler_dicts() gives
ValuesIterable an __iter__ that asks a compiler offering molt_values_dicts
(OffloadCompiler) for the dicts, and runs Django's own for any other
compiler (another backend's, or an unmarked query's compiler under a
molt backend, which then goes the ORM's way inside molt_values_dicts).
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Iterator

from django.db.models.query import ValuesIterable

_django_iter = ValuesIterable.__iter__


def _names(query: Any) -> list[str]:
    """The keys, as ValuesIterable computes them (Django 5.2: query.selected)."""
    selected = getattr(query, "selected", None)
    if selected:
        return list(selected)
    # extra(select=...) columns are always at the start of the row
    return [*query.extra_select, *query.values_select, *query.annotation_select]


def _values_iter(self: ValuesIterable) -> Iterator[dict[str, Any]]:
    """The dicts through chain, so that a row costs no Python frame;
    nothing runs before the first one is asked for (Django's
    _async_generator makes this iterator in the event loop and advances
    it in a thread)."""
    return chain.from_iterable(_values_source(self))


def _values_source(self: ValuesIterable) -> Iterator[Iterator[dict[str, Any]]]:
    """One iterator of the dicts, from the compiler's molt_values_dicts or
    Django's own __iter__."""
    queryset = self.queryset
    query = queryset.query
    compiler = query.get_compiler(queryset.db)
    dicts = getattr(compiler, "molt_values_dicts", None)
    if dicts is None:
        yield _django_iter(self)
    else:
        yield dicts(_names(query), self.chunked_fetch, self.chunk_size)


def use_compiler_dicts() -> None:
    ValuesIterable.__iter__ = _values_iter   # type: ignore[method-assign]
