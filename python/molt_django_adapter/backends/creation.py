"""The test database steps of the molt backends: the worker must neither
read the database Django's connection left nor hold the one Django is
about to drop."""

from __future__ import annotations

from typing import Any

from ..clients import close_clients, remember_targets


class WorkerAwareCreation:
    """Mixed in before Django's DatabaseCreation of each backend."""

    def create_test_db(self, *args: Any, **kwargs: Any) -> Any:
        # What a worker started outside this process (manage.py molt_worker)
        # reads; a spawned worker is restarted by the next offloaded read
        # (clients.check_target sees NAME changed).
        remember_targets()
        return super().create_test_db(*args, **kwargs)  # type: ignore[misc]

    def _clone_test_db(self, *args: Any, **kwargs: Any) -> Any:
        # PostgreSQL clones with the test database as template, which fails
        # while another session is connected to it.
        close_clients()
        return super()._clone_test_db(*args, **kwargs)  # type: ignore[misc]

    def _destroy_test_db(self, *args: Any, **kwargs: Any) -> Any:
        # The spawned workers' pooled connections would make DROP DATABASE
        # fail ("being accessed by other users"); closing the clients stops
        # the workers, and PostgreSQL waits a few seconds for their sessions
        # to end.
        close_clients()
        return super()._destroy_test_db(*args, **kwargs)  # type: ignore[misc]
