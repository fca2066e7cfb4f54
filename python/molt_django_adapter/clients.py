"""The process's shared worker clients: one MoltClient (thread-safe) and one
AsyncMoltClient per event loop (with MOLT_DB["TRANSPORT"] = "inprocess",
InProcessClient and AsyncInProcessClient), made from the settings on first use and
dropped when a setting they derive from changes (override_settings) or
when a Django connection no longer points where their worker reads
(check_target: the test runner's test databases)."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import signal
import tempfile
import threading
from typing import Any, AsyncIterator, Optional

from django.core.signals import setting_changed
from django.dispatch import receiver

from molt_db_adapter import AsyncInProcessClient, AsyncMoltClient, InProcessClient, MoltClient

from .conf import Uncarried, molt_settings, worker_args, worker_command, worker_target, worker_targets
from .execution import forget_functions

_lock = threading.RLock()
_sync: Optional[MoltClient] = None
# loop -> (its client, the async generator that closes it when the loop shuts down)
_async: dict[asyncio.AbstractEventLoop, tuple[AsyncMoltClient, AsyncIterator[None]]] = {}

# settings the worker's command line (DSNs, session time zones) comes from
_WATCHED = {"MOLT_DB", "DATABASES", "USE_TZ", "TIME_ZONE"}


_config_dir: Optional[str] = None


_config_files: dict[str, str] = {}

# alias -> DSN (or Uncarried) the spawned workers of the live clients read;
# None while there is no live client
_spawned_targets: Optional[dict[str, Any]] = None
# SOCKET path / WORKER_CMD -> {alias: DSN or Uncarried} that worker is taken
# to read: the settings when this process first used it, or, if earlier,
# when the test runner was about to re-point the connections
_external_targets: dict[Any, dict[str, Any]] = {}


def _external_key() -> Any:
    """The worker this process does not start (MOLT_DB SOCKET or WORKER_CMD), or None."""
    conf = molt_settings()
    if conf["SOCKET"]:
        return ("socket", conf["SOCKET"])
    if conf["WORKER_CMD"]:
        return ("cmd", repr(conf["WORKER_CMD"]))
    return None


def remember_targets() -> None:
    """Record what the configured external worker reads, if not recorded
    yet (DatabaseCreation calls it before switching to a test database)."""
    key = _external_key()
    with _lock:
        if key is not None and key not in _external_targets:
            _external_targets[key] = worker_targets()


def check_target(alias: str) -> None:
    """Make the worker read what Django's connection for alias reads now.
    A spawned worker started for other settings is stopped, so the next
    query starts one for the current settings; a worker this process does
    not start cannot be re-pointed: Uncarried. Also Uncarried when the
    worker cannot be given the connection's settings at all."""
    current = worker_target(alias)
    key = _external_key()
    if key is not None:
        remember_targets()
        if _external_targets[key].get(alias) != current:
            raise Uncarried("the connection no longer points where the worker of MOLT_DB SOCKET/WORKER_CMD "
                            "reads (its settings changed since, e.g. to a test database)")
        return
    with _lock:
        stale = _spawned_targets is not None and _spawned_targets.get(alias) != current
    if stale:
        close_clients()


def _config_file() -> str:
    """The worker's [db ...] sections in a file only this user can read, so
    no password shows in ps; kept while the process lives (a restarted
    worker reads it again), one per distinct content."""
    from .management.commands.molt_worker import worker_config

    global _config_dir, _spawned_targets
    targets = worker_targets()
    if _spawned_targets is None:
        _spawned_targets = targets
    text = worker_config(worker_args(targets))
    if text not in _config_files:
        if _config_dir is None:
            _config_dir = tempfile.mkdtemp(prefix="molt-django-")
            atexit.register(shutil.rmtree, _config_dir, True)
        fd, path = tempfile.mkstemp(suffix=".conf", dir=_config_dir)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        _config_files[text] = path
    return _config_files[text]


def _new_client(cls: Any) -> Any:
    conf = molt_settings()
    if conf["TRANSPORT"] == "inprocess":
        in_process = InProcessClient if cls is MoltClient else AsyncInProcessClient
        return in_process(["--config", _config_file()], timeout_ms=conf["TIMEOUT_MS"])
    if conf["SOCKET"]:
        return cls(socket_path=conf["SOCKET"], timeout_ms=conf["TIMEOUT_MS"])
    if conf["WORKER_CMD"]:
        return cls(worker_command(), timeout_ms=conf["TIMEOUT_MS"])
    return cls([conf["WORKER_BIN"], "--stdio", "--config", _config_file()], timeout_ms=conf["TIMEOUT_MS"])


def get_client() -> MoltClient:
    """The shared sync client (spawns the worker on first use unless
    MOLT_DB['SOCKET'] names a running one)."""
    global _sync
    with _lock:
        if _sync is None:
            _sync = _new_client(MoltClient)
        return _sync


async def _close_at_shutdown(client: AsyncMoltClient) -> AsyncIterator[None]:
    """Started on the client's loop; the loop's shutdown_asyncgens() (run by
    asyncio.run and asgiref's async_to_sync) finishes it, closing the client
    and so its worker, while the loop still runs."""
    try:
        yield
    finally:
        await client.close()


def _end(client: AsyncMoltClient) -> None:
    """A client whose loop closed without shutting down its async
    generators: stop its spawned worker (SIGTERM drains and exits), or
    free its in-process host."""
    if isinstance(client, AsyncInProcessClient):
        client.close_without_loop()
        return
    pid = client.worker_pid
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _close_on(loop: asyncio.AbstractEventLoop, client: AsyncMoltClient) -> None:
    """Run on the client's own loop (its thread): close it there."""
    loop.create_task(client.close())


def get_async_client() -> AsyncMoltClient:
    """The shared AsyncMoltClient of the running event loop (one per loop:
    a loop that ends takes its client, and a spawned worker, with it)."""
    loop = asyncio.get_running_loop()
    with _lock:
        for old in [lp for lp in _async if lp.is_closed()]:
            _end(_async.pop(old)[0])
        if loop not in _async:
            client = _new_client(AsyncMoltClient)
            closer = _close_at_shutdown(client)
            asyncio.ensure_future(closer.__anext__(), loop=loop)
            _async[loop] = (client, closer)
        return _async[loop][0]


def close_clients() -> None:
    """Close the sync client and forget the async ones (their loops close
    them when they end; a new one is made on next use)."""
    global _sync, _spawned_targets
    with _lock:
        old, _sync = _sync, None
        _spawned_targets = None
        stale = list(_async.items())
        _async.clear()
    forget_functions()
    if old is not None:
        old.close()
    for loop, (client, _) in stale:
        if not loop.is_closed() and loop.is_running():
            loop.call_soon_threadsafe(_close_on, loop, client)
        else:
            _end(client)


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _WATCHED:
        close_clients()
