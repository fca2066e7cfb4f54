"""DATABASE_ROUTERS with a primary and a streaming replica: MOLT_DB["REPLICAS"]
maps Django's replica alias onto the worker's replica routing of its
primary. Reads Django routes to the replica go to the worker's alias of the
primary unpinned (the worker places them on a replica within its lag
bound); reads Django sends to the primary are pinned there. Runs against the
harness's replicas (scripts/with_pg_replicas.sh)."""
import os
import time

import pytest
from django.conf import settings
from django.db.models.expressions import RawSQL
from django.test.utils import override_settings

from molt_django_adapter import capture_events, close_clients
from molt_django_adapter.conf import worker_alias, worker_args
from molt_django_adapter.management.commands.molt_worker import worker_config
from parity.models import Book

pytestmark = pytest.mark.skipif(
    "pg_replica" not in settings.DATABASES,
    reason="MOLT_TEST_REPLICA1_DSN is not set (run under scripts/with_pg_replicas.sh)")


class PrimaryReplicaRouter:
    """Django's documented pattern: reads on the replica, writes on the primary."""

    def db_for_read(self, model, **hints):
        return "pg_replica"

    def db_for_write(self, model, **hints):
        return "pg"

    def allow_relation(self, obj1, obj2, **hints):
        return True


def server_port(qs):
    return qs.offload().annotate(port=RawSQL("inet_server_port()", [])).values_list("port", flat=True)[:1][0]


@pytest.fixture
def routed():
    close_clients()
    molt = {**settings.MOLT_DB, "REPLICAS": {"pg_replica": "pg"}}
    with override_settings(MOLT_DB=molt, DATABASE_ROUTERS=[PrimaryReplicaRouter()]):
        yield
        close_clients()
    close_clients()


def test_the_replica_alias_is_served_by_the_primary_alias_replicas(routed):
    assert worker_alias("pg_replica") == "pg"
    args = worker_args()
    assert "--db-replica" in args
    i = args.index("--db-replica")
    assert args[i + 1].startswith("pg=") and f"port='{os.environ['MOLT_TEST_REPLICA1_PORT']}'" in args[i + 1]
    assert not any(a.startswith("pg_replica=") for a in args)
    assert "\nreplica = " in worker_config(args)


def test_router_reads_go_to_the_replica_primary_reads_stay_pinned(routed):
    replica_port = int(os.environ["MOLT_TEST_REPLICA1_PORT"])
    primary_port = int(os.environ["MOLT_TEST_PGPORT"])
    # the router sends Book reads to pg_replica: the worker's alias pg, not
    # pinned; the replica serves once its first check passed
    deadline = time.monotonic() + 10
    while server_port(Book.objects.all()) != replica_port:
        assert time.monotonic() < deadline, "no routed read reached the replica"
        time.sleep(0.05)
    for _ in range(5):
        assert server_port(Book.objects.all()) == replica_port
        assert server_port(Book.objects.using("pg")) == primary_port
    # the rows are the primary's: the harness filled pg before the worker
    # started, and a replica serves only once it replayed a primary position
    # the worker read
    with capture_events() as events:
        n = Book.objects.offload().count()
    assert [e.offloaded for e in events] == [True]
    assert n == Book.objects.using("pg").offload().count()
