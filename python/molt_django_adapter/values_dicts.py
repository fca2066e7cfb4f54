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
    queryset = self.queryset
    query = queryset.query
    compiler = query.get_compiler(queryset.db)
    dicts = getattr(compiler, "molt_values_dicts", None)
    if dicts is None:
        yield from _django_iter(self)
        return
    yield from dicts(_names(query), self.chunked_fetch, self.chunk_size)


def use_compiler_dicts() -> None:
    ValuesIterable.__iter__ = _values_iter   # type: ignore[method-assign]
