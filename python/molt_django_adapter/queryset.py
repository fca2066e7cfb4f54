"""OffloadQuerySet / OffloadManager: ``qs.offload()`` marks a QuerySet's
reads for the worker, and the async methods of a marked QuerySet await the
worker on the event loop instead of running the sync ones in a thread (an
unmarked one runs Django's own methods)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

import django
from django.db import NotSupportedError, connections, models

from .execution import WorkerQuery, offload_wanted, worker_query
from .replay import run_async


class OffloadQuerySet(models.QuerySet[Any]):
    # Django's private QuerySet members used here (django-stubs omits them)
    _prefetch_related_lookups: tuple[Any, ...]
    _prefetch_done: bool
    if TYPE_CHECKING:
        def _chain(self) -> OffloadQuerySet: ...

    def offload(self, enabled: bool = True) -> "OffloadQuerySet":
        """A copy whose reads go to the worker (enabled=False: not even with
        MOLT_DB['OFFLOAD'] = 'all'; an offloading() block overrides both)."""
        clone = self._chain()
        setattr(clone.query, "molt_offload", enabled)   # our mark on Django's Query, read by offload_wanted
        return clone

    async def aiterator(self, chunk_size: int = 2000) -> AsyncIterator[Any]:
        if not offload_wanted(self.query, self.db):
            async for item in super().aiterator(chunk_size=chunk_size):
                yield item
            return
        if self._prefetch_related_lookups and django.VERSION < (5, 0):   # as Django 4.2 does
            raise NotSupportedError("Using QuerySet.aiterator() after prefetch_related() is not supported.")
        if chunk_size <= 0:
            raise ValueError("Chunk size must be strictly positive.")
        for item in await run_async(lambda: list(self.iterator(chunk_size=chunk_size))):
            yield item

    def __aiter__(self) -> AsyncIterator[Any]:
        if not offload_wanted(self.query, self.db):
            return super().__aiter__()

        def evaluate() -> tuple[list[Any], bool]:
            # on a copy: a replay round that stops half-way must leave
            # nothing behind (the next round evaluates from the start)
            clone = self._chain()
            clone._fetch_all()
            assert clone._result_cache is not None
            return clone._result_cache, clone._prefetch_done

        async def items() -> AsyncIterator[Any]:
            if self._result_cache is None:
                evaluated = await run_async(evaluate)   # (mypy narrows no `a, b = await ...`)
                self._result_cache, self._prefetch_done = evaluated
            for item in self._result_cache:
                yield item
        return items()


def _async_variant(name: str) -> Callable[..., Any]:
    sync_name = name[1:]

    async def method(self: OffloadQuerySet, *args: Any, **kwargs: Any) -> Any:
        if not offload_wanted(self.query, self.db):   # an unmarked QuerySet: Django's own method
            return await getattr(super(OffloadQuerySet, self), name)(*args, **kwargs)
        return await run_async(lambda: getattr(self, sync_name)(*args, **kwargs))

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"{sync_name}() with its worker queries awaited on the event loop (no thread)."
    return method


for _name in ("aget", "acount", "afirst", "alast", "aearliest", "alatest", "aaggregate",
              "aexists", "acontains", "ain_bulk"):
    setattr(OffloadQuerySet, _name, _async_variant(_name))


OffloadManager = models.Manager.from_queryset(OffloadQuerySet, "OffloadManager")


def worker_query_for(qs: models.QuerySet[Any]) -> WorkerQuery:
    """The statement Django would run to iterate ``qs``, ready for the
    worker (``.sql``, ``.params``, ``.worker_alias``), for callers that want
    the worker's own payload (JSON) rather than model objects. Raises
    EmptyResultSet when Django would run nothing, Fallback when the worker
    cannot take it."""
    compiler = qs.query.get_compiler(using=qs.db)
    sql, params = compiler.as_sql()
    return worker_query(connections[qs.db], sql, params)
