"""The worker reads what Django's connection reads: the settings that
change what a session may see (OPTIONS assume_role and options, the test
runner's test databases) reach the worker, or the read falls back; the
worker lets go of a test database before Django drops it."""

import os

import pytest
from django.conf import settings
from django.db import connections

from molt_django_adapter import capture_events, close_clients, get_client
from parity.models import Post

needs_pg = pytest.mark.skipif("pg" not in settings.DATABASES, reason="needs PostgreSQL")
READER = settings.DATABASES.get("pg_reader", {}).get("OPTIONS", {}).get("assume_role")


def make_posts(alias, rows):
    """A fresh parity_post table on alias, committed, holding rows (title, status)."""
    conn = connections[alias]
    run_sql(alias, f"DROP TABLE IF EXISTS {conn.ops.quote_name(Post._meta.db_table)}")
    with conn.schema_editor() as editor:
        editor.create_model(Post)
    Post.objects.using(alias).bulk_create(Post(title=t, status=s) for t, s in rows)


def run_sql(alias, *statements):
    with connections[alias].cursor() as c:
        for statement in statements:
            c.execute(statement)


def offloaded(qs):
    """The values of qs read through the worker, and that they were."""
    with capture_events() as events:
        got = list(qs.offload())
    assert [e.offloaded for e in events] == [True], events
    return got


def titles(alias):
    return Post.objects.using(alias).order_by("title").values_list("title", flat=True)


# ---- OPTIONS that change what the session sees ----

@pytest.fixture
def row_level_security():
    """Five posts, two of them drafts that a policy hides from READER (a
    role without BYPASSRLS; the harness user is a superuser, which
    bypasses row-level security, so the test assumes READER)."""
    make_posts("pg", [("a", "published"), ("b", "draft"), ("c", "published"), ("d", "draft"), ("e", "published")])
    with connections["pg"].cursor() as c:
        c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [READER])
        role_exists = c.fetchone()
    run_sql("pg", *([] if role_exists else [f'CREATE ROLE "{READER}" NOLOGIN']),
            f'GRANT SELECT ON parity_post TO "{READER}"',
            "ALTER TABLE parity_post ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE parity_post FORCE ROW LEVEL SECURITY",
            "CREATE POLICY not_drafts ON parity_post FOR SELECT USING (status <> 'draft')")
    yield
    run_sql("pg", "DROP TABLE parity_post")


@needs_pg
def test_assume_role_applies_row_level_security(row_level_security):
    orm = list(titles("pg_reader"))
    assert orm == ["a", "c", "e"]                          # Django's SET ROLE: drafts hidden
    assert offloaded(titles("pg_reader")) == orm           # the worker too
    assert offloaded(Post.objects.using("pg_reader").filter(status="draft").values_list("id")) == []
    with capture_events() as events:
        assert Post.objects.using("pg_reader").offload().count() == 3
    assert [e.offloaded for e in events] == [True]
    assert offloaded(titles("pg")) == ["a", "b", "c", "d", "e"]   # the login role sees all
    who = get_client().query("SELECT current_user, session_user", db_alias="pg_reader").rows[0]
    assert who[0] == READER and who[1] != READER


@pytest.fixture
def other_schema():
    make_posts("pg", [("public", "published")])
    run_sql("pg", "DROP SCHEMA IF EXISTS molt_django_schema CASCADE",
            "CREATE SCHEMA molt_django_schema",
            "CREATE TABLE molt_django_schema.parity_post (LIKE public.parity_post INCLUDING ALL)",
            "INSERT INTO molt_django_schema.parity_post (title, status) VALUES ('in schema', 'x')")
    yield
    run_sql("pg", "DROP SCHEMA molt_django_schema CASCADE", "DROP TABLE parity_post")


@needs_pg
def test_options_search_path(other_schema):
    assert list(titles("pg_schema")) == ["in schema"]
    assert offloaded(titles("pg_schema")) == ["in schema"]
    assert offloaded(titles("pg")) == ["public"]


def test_an_option_the_worker_cannot_take_is_refused():
    from molt_django_adapter.conf import Uncarried, postgresql_dsn

    pg = {"NAME": "db", "USER": "u", "OPTIONS": {}}
    for refused in ({"some_future_key": "x"}, {"service": "prod"}, {"sslcrl": "/crl.pem"},
                    {"gssencmode": "require"}):
        with pytest.raises(Uncarried, match=list(refused)[0]):
            postgresql_dsn({**pg, "OPTIONS": refused}, "UTC")
    assert "gssencmode='prefer'" in postgresql_dsn({**pg, "OPTIONS": {"gssencmode": "prefer"}}, "UTC")
    # Django's own keys do not reach the DSN; OPTIONS' dbname wins over NAME, as in Django
    dsn = postgresql_dsn({**pg, "OPTIONS": {"isolation_level": 1, "dbname": "other", "assume_role": "a b\\c"}}, "UTC")
    assert "dbname='other'" in dsn and "isolation_level" not in dsn
    assert dsn.endswith("options='-c role=a\\\\ b\\\\\\\\c -c TimeZone=UTC'")
    # a role name cannot add startup options of its own
    dsn = postgresql_dsn({**pg, "OPTIONS": {"assume_role": "x -c search_path=evil"}}, "UTC")
    assert dsn.endswith("options='-c role=x\\\\ -c\\\\ search_path=evil -c TimeZone=UTC'")


def test_in_memory_sqlite_falls_back():
    """What Django's test runner uses by default: the worker cannot share
    it, so reads go through the ORM, with the reason."""
    make_posts("memory", [("mem", "published")])
    with capture_events() as events:
        got = list(titles("memory").offload())
    assert got == ["mem"]
    assert [e.offloaded for e in events] == [False] and "in-memory" in events[0].reason


# ---- the test runner's test databases ----

def _database_exists(alias, name):
    if connections[alias].vendor == "sqlite":
        return os.path.exists(name)
    with connections["pg"].cursor() as c:
        c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return c.fetchone() is not None


@pytest.mark.parametrize("worker_before", [True, False], ids=["worker-started-before", "worker-started-after"])
@pytest.mark.parametrize("alias", [a for a in ("other", "pg_other") if a in settings.DATABASES])
def test_reads_follow_the_test_database_and_teardown_works(alias, worker_before):
    """As Django's test runner does it: create_test_db re-points the
    connection (NAME) without a signal; reads must come from the test
    database, and destroy_test_db must be able to drop it (the worker
    holds pooled connections to it)."""
    conn = connections[alias]
    make_posts(alias, [("not a test row", "published")])
    if worker_before:
        assert offloaded(titles(alias)) == ["not a test row"]   # a worker reads the real database
    else:
        close_clients()    # the first worker starts after the switch
    real_name = conn.settings_dict["NAME"]
    test_name = conn.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        assert test_name != real_name
        Post.objects.using(alias).create(title="test row")
        assert offloaded(titles(alias)) == ["test row"]
    finally:
        conn.creation.destroy_test_db(real_name, verbosity=0)
    assert not _database_exists(alias, test_name)
    assert conn.settings_dict["NAME"] == real_name
    assert offloaded(titles(alias)) == ["not a test row"]


@pytest.fixture
def socket_worker(tmp_path):
    """A worker this process does not start (as manage.py molt_worker runs
    it), serving DATABASES as they are now, with MOLT_DB["SOCKET"] set."""
    import subprocess
    import time

    from django.test.utils import override_settings

    from molt_django_adapter.conf import worker_args
    from molt_django_adapter.management.commands.molt_worker import worker_config

    sock, conf = tmp_path / "molt.sock", tmp_path / "molt.conf"
    conf.write_text(worker_config(worker_args()))
    proc = subprocess.Popen([settings.MOLT_DB["WORKER_BIN"], "--socket", str(sock), "--config", str(conf)])
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        with override_settings(MOLT_DB={**settings.MOLT_DB, "SOCKET": str(sock)}):
            yield
    finally:
        proc.terminate()
        proc.wait()


def test_a_socket_worker_is_not_used_for_a_test_database(socket_worker):
    """The worker behind MOLT_DB["SOCKET"] cannot be re-pointed: once the
    connection moved to its test database, its reads go through the ORM."""
    conn = connections["other"]
    make_posts("other", [("not a test row", "published")])
    assert offloaded(titles("other")) == ["not a test row"]
    real_name = conn.settings_dict["NAME"]
    conn.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        Post.objects.using("other").create(title="test row")
        with capture_events() as events:
            got = list(titles("other").offload())
    finally:
        conn.creation.destroy_test_db(real_name, verbosity=0)
    assert got == ["test row"]
    assert [e.offloaded for e in events] == [False] and "no longer points" in events[0].reason
    assert offloaded(titles("other")) == ["not a test row"]
