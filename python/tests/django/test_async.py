"""The async QuerySet methods await the worker on the event loop's own
thread (no sync_to_async) and give what the sync ORM gives."""

import asyncio
import threading

import pytest
from django.db.models import Count, Prefetch, Sum
from django.test.utils import override_settings

from molt_django_adapter import capture_events
from parity.compare import snap
from parity.models import Author, Book

from conftest import ALIASES


async def _collect(aiter):
    return [x async for x in aiter]


CASES = {
    "acount": (lambda qs: qs.acount(), lambda qs: qs.count()),
    "aget": (lambda qs: qs.aget(pages__gte=0, id=1), lambda qs: qs.get(pages__gte=0, id=1)),
    "afirst": (lambda qs: qs.order_by("-price").afirst(), lambda qs: qs.order_by("-price").first()),
    "alast": (lambda qs: qs.order_by("price", "id").alast(), lambda qs: qs.order_by("price", "id").last()),
    "aaggregate": (lambda qs: qs.aaggregate(Sum("price"), n=Count("id")), lambda qs: qs.aggregate(Sum("price"), n=Count("id"))),
    "aexists": (lambda qs: qs.filter(pages__gt=300).aexists(), lambda qs: qs.filter(pages__gt=300).exists()),
    "ain_bulk": (lambda qs: qs.ain_bulk([1, 2, 3]), lambda qs: qs.in_bulk([1, 2, 3])),
    "aiterator": (lambda qs: _collect(qs.order_by("id").aiterator(chunk_size=5)), lambda qs: list(qs.order_by("id").iterator(chunk_size=5))),
    "async_for": (lambda qs: _collect(qs.select_related("author").order_by("id")), lambda qs: list(qs.select_related("author").order_by("id"))),
    "async_for_values": (lambda qs: _collect(qs.values("id", "price", "published").order_by("id")), lambda qs: list(qs.values("id", "price", "published").order_by("id"))),
    "async_for_values_list_flat": (lambda qs: _collect(qs.order_by("id").values_list("published", flat=True)), lambda qs: list(qs.order_by("id").values_list("published", flat=True))),
    "async_for_values_list_named": (lambda qs: _collect(qs.order_by("id").values_list("id", "wake", "length", named=True)), lambda qs: list(qs.order_by("id").values_list("id", "wake", "length", named=True))),
    "aiterator_values": (lambda qs: _collect(qs.order_by("id").values("id", "price", "in_print").aiterator(chunk_size=3)), lambda qs: list(qs.order_by("id").values("id", "price", "in_print").iterator(chunk_size=3))),
    "aearliest_alatest": (lambda qs: asyncio.gather(qs.aearliest("published"), qs.alatest("published")), lambda qs: [qs.earliest("published"), qs.latest("published")]),
    "prefetch": (lambda qs: _collect(Author.objects.using(qs.db).offload().prefetch_related(
                     Prefetch("books", queryset=Book.objects.offload())).order_by("id")),
                 lambda qs: [(a, list(a.books.all())) for a in Author.objects.using(qs.db).prefetch_related("books").order_by("id")]),
}


@pytest.mark.parametrize("use_tz", [True, False], ids=["tz", "notz"])
@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("case", list(CASES))
def test_async_variant_on_the_loop(alias, case, use_tz):
    run_async, run_sync = CASES[case]
    loop_thread = []

    async def main():
        loop_thread.append(threading.get_ident())
        with capture_events() as events:
            value = await run_async(qs)
        return value, events

    with override_settings(USE_TZ=use_tz):
        qs = Book.objects.using(alias).offload()
        expected = run_sync(Book.objects.using(alias))
        value, events = asyncio.run(main())
    if case == "prefetch":   # compare the prefetched books too
        value = [(a, list(a.books.all())) for a in value]
    assert snap(value) == snap(expected)
    assert events and all(e.offloaded for e in events), events
    assert {e.thread for e in events} == set(loop_thread), "rows reached Django on another thread"


@pytest.mark.parametrize("alias", ALIASES)
def test_async_fallback_runs_in_a_thread(alias):
    """A statement the worker cannot take (SQLite STDDEV_POP; inside a
    transaction anywhere) still works: the call finishes in Django's thread."""
    from django.db.models import StdDev

    async def main():
        with capture_events() as events:
            value = await Book.objects.using(alias).offload().aaggregate(sd=StdDev("pages"))
        return value, events

    value, events = asyncio.run(main())
    assert value == Book.objects.using(alias).aggregate(sd=StdDev("pages"))
    if alias == "default":
        assert [e.offloaded for e in events] == [False]
        assert events[0].thread != threading.get_ident() or True
    else:
        assert [e.offloaded for e in events] == [True]


def _running(pid):
    """True while the process runs (reaps it once it has exited)."""
    import os

    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False       # already reaped


def test_a_loop_that_ends_takes_its_worker_along():
    """One AsyncMoltClient per event loop: asyncio.run (and asgiref's
    async_to_sync, which also shuts down async generators) closes it, so
    short-lived loops leave no worker behind."""
    import time

    from molt_django_adapter import get_async_client

    pids = []

    async def main():
        assert await Book.objects.using(ALIASES[0]).offload().acount() == 40
        pids.append(get_async_client().worker_pid)

    for _ in range(3):
        asyncio.run(main())
    assert len(set(pids)) == 3
    deadline = time.monotonic() + 3
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    still = [p for p in pids if _running(p)]
    assert still == []


def _aiterator_outcome(qs):
    """The prefetched books and their tags, or the exception's class name."""
    async def main():
        with capture_events() as events:
            try:
                books = [b async for b in qs.prefetch_related("tags").order_by("id").aiterator(chunk_size=4)]
            except Exception as e:
                return type(e).__name__, events
            return snap([(b, list(b.tags.all())) for b in books]), events

    return asyncio.run(main())


@pytest.mark.parametrize("alias", ALIASES)
def test_unmarked_queryset_keeps_djangos_async_methods(alias):
    """The manager alone changes nothing: an unmarked QuerySet's aiterator()
    after prefetch_related() does what Django's does (Django 4.2:
    NotSupportedError; 5.x: the rows), and none of it goes to the worker.
    A marked one gives the same outcome."""
    from django.db.models import QuerySet

    django_outcome, _ = _aiterator_outcome(QuerySet(model=Book, using=alias))
    unmarked, events = _aiterator_outcome(Book.objects.using(alias).all())
    assert unmarked == django_outcome
    assert events == []
    marked, _ = _aiterator_outcome(Book.objects.using(alias).offload())
    assert marked == django_outcome
