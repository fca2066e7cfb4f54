"""worker_transaction(): an atomic() block's reads through one worker
transaction, on SQLite and PostgreSQL. The reads go to the worker (they do
not see Django's uncommitted write, which is what the block asked for),
see one snapshot while another connection commits, refuse to slip back to
Django's connection, leave writes on the ORM, and end with the block."""

import asyncio
import sqlite3

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import override_settings

from molt_django_adapter import aworker_transaction, capture_events, get_client, worker_transaction
from parity.models import Book

from conftest import ALIASES


def molt(**changes):
    return override_settings(MOLT_DB={**settings.MOLT_DB, **changes})


def sqlite_journal(alias):
    con = sqlite3.connect(settings.DATABASES[alias]["NAME"])
    try:
        return con.execute("pragma journal_mode").fetchone()[0]
    finally:
        con.close()


def commit_elsewhere(alias, sql, timeout=5.0):
    """A write committed by a connection that is neither Django's nor the worker's."""
    conf = settings.DATABASES[alias]
    if conf["ENGINE"].endswith("sqlite3"):
        con = sqlite3.connect(conf["NAME"], timeout=timeout)
        try:
            con.execute(sql)
            con.commit()
        finally:
            con.close()
        return
    import psycopg

    dsn = f"host={conf['HOST']} port={conf['PORT']} dbname={conf['NAME']} user={conf['USER']}"
    if conf.get("PASSWORD"):
        dsn += f" password={conf['PASSWORD']}"
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(sql)


@pytest.mark.parametrize("alias", ALIASES)
def test_atomic_reads_go_through_the_worker_transaction(alias):
    books = Book.objects.using(alias)
    before = books.filter(pages=4242).count()
    with transaction.atomic(using=alias):
        books.filter(id=1).update(pages=4242)              # Django's, uncommitted
        assert books.filter(pages=4242).count() == before + 1   # not offloaded: sees it
        with worker_transaction(using=alias) as tx, capture_events() as events:
            assert tx.read_only is True
            n = books.filter(pages=4242).count()           # unmarked: offloaded anyway
            titles = list(books.filter(id=1).values_list("title", flat=True))
        transaction.set_rollback(True, using=alias)
    assert n == before                                     # the worker's snapshot
    assert titles and all(e.offloaded for e in events), [(e.offloaded, e.reason) for e in events]
    assert get_client().stats()["worker"]["transactions"] == 0


@pytest.mark.parametrize("alias", ALIASES)
def test_one_snapshot_while_another_connection_commits(alias):
    books = Book.objects.using(alias)
    table = Book._meta.db_table
    if settings.DATABASES[alias]["ENGINE"].endswith("sqlite3") and sqlite_journal(alias) != "wal":
        # a rollback journal: the read transaction's SHARED lock holds
        # writers off until it ends
        with worker_transaction(using=alias):
            books.count()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                commit_elsewhere(alias, f"update {table} set pages = pages where id = 2", 0.2)
        commit_elsewhere(alias, f"update {table} set pages = pages where id = 2", 0.2)
        return
    try:
        with worker_transaction(using=alias, isolation="repeatable_read"):
            first = books.count()
            commit_elsewhere(alias, f"update {table} set pages = pages + 1000 where id = 2")
            again = books.count()
            pages = books.get(id=2).pages
        assert again == first
        assert books.get(id=2).pages == pages + 1000       # after the block: the commit shows
    finally:
        commit_elsewhere(alias, f"update {table} set pages = pages - 1000 where id = 2")


@pytest.mark.parametrize("alias", ALIASES)
def test_a_read_the_worker_cannot_take_raises_instead_of_leaving_the_snapshot(alias):
    with molt(MAX_ROWS=1), pytest.raises(TransactionManagementError, match="MAX_ROWS"):
        with worker_transaction(using=alias):
            list(Book.objects.using(alias).all())
    assert get_client().stats()["worker"]["transactions"] == 0


@pytest.mark.parametrize("alias", ALIASES)
def test_writes_and_opt_outs_stay_on_the_orm(alias):
    books = Book.objects.using(alias)
    with transaction.atomic(using=alias):
        with worker_transaction(using=alias), capture_events() as events:
            books.offload().filter(id=3).update(pages=77)
            books.offload(False).filter(id=3).count()
            n = books.filter(pages=77).count()             # the worker: not seen
        transaction.set_rollback(True, using=alias)
    assert n == 0
    assert [(e.offloaded, e.reason) for e in events][0] == (
        False, "writes inside worker_transaction() go through the ORM")
    assert [e.offloaded for e in events] == [False, True]  # the opt-out records nothing


@pytest.mark.parametrize("alias", ALIASES)
def test_an_exception_rolls_the_worker_transaction_back_and_nesting_is_refused(alias):
    with pytest.raises(KeyError):
        with worker_transaction(using=alias):
            Book.objects.using(alias).count()
            with pytest.raises(TransactionManagementError, match="open already"):
                with worker_transaction(using=alias):
                    pass
            raise KeyError("leave")
    assert get_client().stats()["worker"]["transactions"] == 0


@pytest.mark.parametrize("alias", ALIASES)
def test_async_worker_transaction(alias):
    async def main():
        async with aworker_transaction(using=alias):
            n = await Book.objects.using(alias).acount()
            rows = [b async for b in Book.objects.using(alias).order_by("id")]
        with pytest.raises(TransactionManagementError, match="async"):
            with worker_transaction(using=alias):
                await Book.objects.using(alias).offload().acount()
        return n, len(rows)

    n, k = asyncio.run(main())
    assert n == k == Book.objects.using(alias).count()
    connections.close_all()
