"""What must never give a wrong answer: transactions (the worker cannot
see their writes), a worker that is gone, errors of writes sent through
the worker, and the settings that choose fall back or raise."""

import os
import signal
import time
import warnings

import pytest
from django.conf import settings
from django.db import OperationalError, ProgrammingError, IntegrityError, connections, transaction
from django.db.models.expressions import RawSQL
from django.db.transaction import TransactionManagementError
from django.test.utils import override_settings

from molt_django_adapter import capture_events, get_client
from parity.models import Author, Book, Missing

from conftest import ALIASES


def molt(**changes):
    return override_settings(MOLT_DB={**settings.MOLT_DB, **changes})


@pytest.mark.parametrize("alias", ALIASES)
def test_atomic_falls_back_and_sees_the_transaction(alias):
    before = Book.objects.using(alias).count()
    with transaction.atomic(using=alias):
        Book.objects.using(alias).filter(id=1).update(pages=999)
        with capture_events() as events:
            n = Book.objects.using(alias).offload().filter(pages=999).count()
        transaction.set_rollback(True, using=alias)
    assert n == 1                       # the uncommitted write is seen
    assert [(e.offloaded, e.reason) for e in events] == [(False, "inside a transaction")]
    assert Book.objects.using(alias).count() == before


@pytest.mark.parametrize("alias", ALIASES)
def test_atomic_raise(alias):
    with molt(IN_ATOMIC="raise"), transaction.atomic(using=alias):
        with pytest.raises(TransactionManagementError, match="atomic"):
            Book.objects.using(alias).offload().count()


@pytest.mark.parametrize("alias", ALIASES)
def test_autocommit_off_falls_back(alias):
    conn = connections[alias]
    conn.set_autocommit(False)
    try:
        with capture_events() as events:
            Book.objects.using(alias).offload().count()
    finally:
        conn.rollback()
        conn.set_autocommit(True)
    assert [e.offloaded for e in events] == [False]


@pytest.mark.parametrize("alias", ALIASES)
def test_worker_missing_falls_back_with_a_warning(alias):
    with molt(WORKER_BIN="/nonexistent/molt_worker"):
        with capture_events() as events, pytest.warns(RuntimeWarning, match="unavailable"):
            n = Book.objects.using(alias).offload().count()
    assert n == Book.objects.using(alias).count()
    assert not events[0].offloaded and "unavailable" in events[0].reason


@pytest.mark.parametrize("alias", ALIASES)
def test_worker_missing_raise(alias):
    with molt(WORKER_BIN="/nonexistent/molt_worker", ON_UNAVAILABLE="raise"):
        with pytest.raises(OperationalError, match="WorkerUnavailable"):
            Book.objects.using(alias).offload().count()


def test_worker_killed_is_restarted():
    alias = ALIASES[0]
    client = get_client()
    Book.objects.using(alias).offload().count()
    os.kill(client.worker_pid, signal.SIGKILL)
    time.sleep(0.2)
    with capture_events() as events, warnings.catch_warnings():
        warnings.simplefilter("error")   # a restart is not a fallback
        n = Book.objects.using(alias).offload().count()
    assert n == Book.objects.using(alias).count()
    assert [e.offloaded for e in events] == [True]


@pytest.mark.parametrize("alias", ALIASES)
def test_read_error_is_djangos(alias):
    """A read the database refuses is re-run by the ORM, so the caller gets
    exactly Django's own exception."""
    with pytest.raises(Exception) as orm:
        list(Missing.objects.using(alias).all())
    with capture_events() as events, pytest.raises(type(orm.value)):
        list(Missing.objects.using(alias).offload())
    assert not events[0].offloaded and "SQLSTATE" in events[0].reason


@pytest.mark.parametrize("alias", ALIASES)
def test_write_through_the_worker(alias):
    a = Author.objects.using(alias).get(pk=3)
    with capture_events() as events:
        n = Author.objects.using(alias).offload().filter(pk=3).update(nick="via-worker")
    try:
        assert n == 1 and [e.offloaded for e in events] == [True]
        assert Author.objects.using(alias).get(pk=3).nick == "via-worker"
    finally:
        Author.objects.using(alias).filter(pk=3).update(nick=a.nick)


@pytest.mark.parametrize("alias", ALIASES)
def test_write_integrity_error(alias):
    taken = Author.objects.using(alias).get(pk=1).email
    with pytest.raises(IntegrityError) as e:
        Author.objects.using(alias).offload().filter(pk=2).update(email=taken)
    assert e.value.sqlstate.startswith("23")
    assert Author.objects.using(alias).get(pk=2).email != taken


@pytest.mark.parametrize("alias", ALIASES)
def test_write_programming_error(alias):
    with pytest.raises(ProgrammingError):
        Missing.objects.using(alias).offload().filter(pk=1).update(name="x")


@pytest.mark.parametrize("alias", ALIASES)
def test_writes_stay_on_the_orm_without_allow_write(alias):
    with molt(ALLOW_WRITE=[]), capture_events() as events:
        Author.objects.using(alias).offload().filter(pk=3).update(active=True)
    assert [e.offloaded for e in events] == [False]
    assert "ALLOW_WRITE" in events[0].reason


@pytest.mark.skipif("pg" not in ALIASES, reason="needs PostgreSQL")
def test_timeout_is_an_operational_error():
    with molt(TIMEOUT_MS=100):
        qs = Book.objects.using("pg").offload().annotate(z=RawSQL("pg_sleep(%s)", (2,)))[:1]
        t0 = time.monotonic()
        with pytest.raises(OperationalError, match="[Tt]ime"):
            list(qs)
        assert time.monotonic() - t0 < 1.5


def test_settings_are_checked():
    from django.core.exceptions import ImproperlyConfigured

    with molt(OFFLOAD="sometimes"), pytest.raises(ImproperlyConfigured, match="OFFLOAD"):
        Book.objects.offload().count()
    with override_settings(MOLT_DB={"NOPE": 1}), pytest.raises(ImproperlyConfigured, match="NOPE"):
        Book.objects.offload().count()


def test_offload_all_and_opt_out():
    alias = ALIASES[0]
    with molt(OFFLOAD="all"), capture_events() as events:
        Book.objects.using(alias).count()                      # not marked: offloaded anyway
        Book.objects.using(alias).offload(False).count()       # opted out
    assert [e.offloaded for e in events] == [True]


@pytest.mark.skipif("pg" not in ALIASES, reason="needs PostgreSQL")
@pytest.mark.parametrize("use_tz, zone", [(True, "UTC"), (False, "Europe/Paris")])
def test_worker_session_time_zone_follows_django(use_tz, zone):
    """SQL that depends on the session zone (USE_TZ off: ::date casts) must
    see the zone Django's own connection has."""
    with override_settings(USE_TZ=use_tz):
        with connections["pg"].cursor() as c:
            c.execute("SELECT current_setting('TimeZone')")
            django_zone = c.fetchone()[0]
        worker_zone = get_client().query("SELECT current_setting('TimeZone')", db_alias="pg").rows[0][0]
    assert worker_zone == django_zone == zone


@pytest.mark.parametrize("alias", ALIASES)
def test_iterator_streams_in_chunks(alias):
    """iterator() reads the worker's stream chunk by chunk: equal to the
    ORM, and leaving early cancels the rest (the next query still works)."""
    from parity.compare import snap

    qs = Book.objects.using(alias).select_related("author").order_by("id")
    with capture_events() as events:
        got = list(qs.offload().iterator(chunk_size=7))
    assert snap(got) == snap(list(qs.iterator(chunk_size=7)))
    assert [(e.offloaded, e.reason) for e in events] == [(True, "streamed")]
    it = qs.offload().iterator(chunk_size=3)
    assert next(it).id == 1
    del it
    assert Book.objects.using(alias).offload().count() == 40


def test_spawned_worker_gets_dsns_from_a_private_file():
    """No DSN (so no password) on the worker's command line."""
    import stat

    cmd = get_client().worker_cmd
    assert "--db" not in cmd and cmd[-2] == "--config"
    mode = os.stat(cmd[-1]).st_mode
    assert stat.S_IMODE(mode) == 0o600
    with open(cmd[-1]) as f:
        assert "[db default]" in f.read()


@pytest.mark.parametrize("alias", ALIASES)
def test_empty_result_set_is_not_recorded_as_offloaded(alias):
    # Django short-cuts pk__in=[] (EmptyResultSet): nothing reaches the
    # worker, so the event must not say the rows came from it
    with capture_events() as events:
        rows = list(Book.objects.using(alias).offload().filter(pk__in=[]))
    assert rows == []
    assert [(e.offloaded, e.reason.split(":")[0]) for e in events] == [(False, "EmptyResultSet")]
