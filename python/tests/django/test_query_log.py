"""Offloaded statements appear in Django's query log as the ORM's own do:
connection.queries / CaptureQueriesContext / assertNumQueries get one entry
per statement, with the text Django's debug cursor would record; an async
call records each of its statements once, however many replay rounds it
took."""

import asyncio
import datetime
import decimal
import re

import pytest
from django.db import connections
from django.db.models import F, QuerySet
from django.test import TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext

from molt_django_adapter import capture_events
from molt_django_adapter.replay import MAX_ROUNDS
from parity.models import Book

from conftest import ALIASES

READS = {
    "count": lambda qs: qs.count(),
    "filter_params": lambda qs: list(qs.filter(title__startswith="it's %", price__gte=decimal.Decimal("1.50"),
                                               published__gte=datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc)).values_list("id")),
    "iterator": lambda qs: list(qs.order_by("id").values_list("id", flat=True).iterator(chunk_size=7)),
    "in_bulk": lambda qs: qs.in_bulk(list(range(1, 3000))),
    "update_same": lambda qs: qs.filter(id=1).update(pages=F("pages")),
}


#: Django's PostgreSQL iterator() declares a server-side cursor; the worker
#: streams the SELECT itself, and that is what is logged
_DECLARE = re.compile(r'^DECLARE "[^"]+" NO SCROLL CURSOR WITH HOLD FOR ')


def _logged(alias, run):
    """(the SQL Django's query log got, the events) of run()."""
    with CaptureQueriesContext(connections[alias]) as ctx, capture_events() as events:
        run()
    return [_DECLARE.sub("", q["sql"]) for q in ctx.captured_queries], events


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("case", list(READS))
def test_offloaded_statement_is_logged_as_the_orm_logs_it(alias, case):
    orm_sql, _ = _logged(alias, lambda: READS[case](QuerySet(model=Book, using=alias)))
    sql, events = _logged(alias, lambda: READS[case](Book.objects.using(alias).offload()))
    assert events and all(e.offloaded for e in events), events
    assert sql == orm_sql


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("n_ids", [5000, 20000])
def test_async_call_logs_each_statement_once(alias, n_ids):
    """ain_bulk batches its ids (SQLite: 999 a statement; PostgreSQL: one
    statement). Each statement is sent and reported once however many
    replay rounds the call took (before: one event per statement per
    round), and the value is the ORM's. Up to MAX_ROUNDS - 1 statements
    the call finishes on the loop and logs on the loop's connection what
    the sync ORM logs; beyond, it finishes in Django's thread (and logs on
    that thread's connection, as Django's own ain_bulk does)."""
    ids = list(range(1, n_ids + 1))
    statements = -(-n_ids // 999) if alias == "default" else 1
    expected_sql, _ = _logged(alias, lambda: QuerySet(model=Book, using=alias).in_bulk(ids))
    expected = QuerySet(model=Book, using=alias).in_bulk(ids)
    assert len(expected_sql) == statements

    async def main():
        conn = connections[alias]        # the loop's own connection object
        conn.queries_log.clear()
        value = await Book.objects.using(alias).offload().ain_bulk(ids)
        return value, [q["sql"] for q in conn.queries]

    with override_settings(DEBUG=True), capture_events() as events:
        value, sql = asyncio.run(main())
    assert {k: (b.title, b.price) for k, b in value.items()} == {k: (b.title, b.price) for k, b in expected.items()}
    assert len(events) == statements and all(e.offloaded for e in events), len(events)
    assert sql == (expected_sql if statements < MAX_ROUNDS else [])


class AssertNumQueriesTest(TransactionTestCase):
    """Django's own assertion counts an offloaded read (Django's
    test_ignores_connection_configuration_queries: 1 query, not 0)."""

    databases = set(ALIASES)
    serialized_rollback = False

    def _fixture_teardown(self):   # keep the session's data (no flush)
        pass

    def test_offloaded_read_counts(self):
        for alias in ALIASES:
            with capture_events() as events, self.assertNumQueries(2, using=alias):
                list(Book.objects.using(alias).offload().filter(pages__gt=0)[:3])
                Book.objects.using(alias).offload().count()
            assert [e.offloaded for e in events] == [True, True]
