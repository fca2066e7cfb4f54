"""molt_django_adapter: Django QuerySets read through molt_worker, with the
values Django's own driver would give (docs/django.md).

    DATABASES = {"default": {"ENGINE": "molt_django_adapter.backends.postgresql", ...}}
    class Item(models.Model):
        objects = OffloadManager()
    Item.objects.offload().filter(...).values("id")     # rows from the worker
    await Item.objects.offload().acount()                # no thread
"""

from .clients import close_clients, get_async_client, get_client
from .events import Event, capture_events
from .execution import Fallback, WorkerQuery, offloading
from .queryset import OffloadManager, OffloadQuerySet, worker_query_for
from .sqlite_functions import WORKER_DJANGO_FUNCTIONS
from .worker_tx import aworker_transaction, worker_transaction

__all__ = [
    "OffloadQuerySet",
    "OffloadManager",
    "offloading",
    "capture_events",
    "Event",
    "get_client",
    "get_async_client",
    "close_clients",
    "worker_query_for",
    "WorkerQuery",
    "Fallback",
    "WORKER_DJANGO_FUNCTIONS",
    "worker_transaction",
    "aworker_transaction",
]
