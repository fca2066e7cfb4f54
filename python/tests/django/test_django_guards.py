"""Offloaded reads pass Django's guards as the ORM's own do: sync database
access inside a coroutine raises SynchronousOnlyOperation (instead of
blocking the event loop), and a test that may not use a database gets
Django's "Database queries ... are not allowed"."""

import asyncio

import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.test import SimpleTestCase
from django.test.testcases import DatabaseOperationForbidden

from molt_django_adapter import capture_events, offloading
from parity.models import Book

from conftest import ALIASES


@pytest.mark.parametrize("alias", ALIASES)
def test_sync_read_in_a_coroutine_raises(alias):
    async def main():
        with capture_events() as events, offloading():
            try:
                return [b.pk for b in Book.objects.using(alias).offload()[:3]]
            finally:
                assert events == []     # nothing was sent

    with pytest.raises(SynchronousOnlyOperation):
        asyncio.run(main())


@pytest.mark.parametrize("alias", ALIASES)
def test_lazy_relation_in_async_for_raises(alias):
    async def main():
        async for book in Book.objects.using(alias).offload().order_by("id")[:2]:
            with offloading():
                book.author       # not selected: a sync query on the loop

    with pytest.raises(SynchronousOnlyOperation):
        asyncio.run(main())


@pytest.mark.parametrize("alias", ALIASES)
def test_async_variants_still_run_on_the_loop(alias):
    async def main():
        with capture_events() as events:
            n = await Book.objects.using(alias).offload().acount()
        return n, events

    n, events = asyncio.run(main())
    assert n == 40 and [e.offloaded for e in events] == [True]


class NoDatabaseTest(SimpleTestCase):
    """SimpleTestCase: no database at all."""

    def test_offloaded_read_is_forbidden(self):
        for alias in ALIASES:
            with capture_events() as events:
                with self.assertRaisesMessage(DatabaseOperationForbidden, f"Database queries to '{alias}' are not allowed"):
                    Book.objects.using(alias).offload().count()
                with self.assertRaisesMessage(DatabaseOperationForbidden, "not allowed"):
                    list(Book.objects.using(alias).offload().iterator(chunk_size=5))
            self.assertEqual(events, [])

    def test_nothing_to_run_is_still_allowed(self):
        # Django runs nothing for an empty __in either, so it raises nothing
        self.assertEqual(list(Book.objects.offload().filter(id__in=[])), [])

    def test_offloaded_read_in_another_thread_is_forbidden(self):
        """Django 5.2: a connection another thread would open is refused
        ("Database threaded connections ... are not allowed"); 4.2 has no
        such guard and the read runs."""
        import threading

        import django

        outcomes = []

        def read():
            try:
                with capture_events() as events:
                    outcomes.append(Book.objects.using(ALIASES[0]).offload().first().pk)
            except DatabaseOperationForbidden as e:
                outcomes.append(str(e))
            else:
                outcomes.append(events)

        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        if django.VERSION >= (5, 2):
            self.assertEqual(len(outcomes), 1)
            self.assertIn(f"Database threaded connections to '{ALIASES[0]}' are not allowed", outcomes[0])
        else:
            self.assertEqual(outcomes[0], 1)
            self.assertEqual([e.offloaded for e in outcomes[1]], [True])
