"""The process's shared worker clients: one MoltClient (thread-safe) and one
AsyncMoltClient per event loop, made from the settings on first use and
dropped when a setting they derive from changes (override_settings)."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import threading
import weakref
from typing import Any, Optional

from django.core.signals import setting_changed
from django.dispatch import receiver

from molt_db_adapter import AsyncMoltClient, MoltClient

from .conf import molt_settings, worker_args, worker_command
from .execution import forget_functions

_lock = threading.Lock()
_sync: Optional[MoltClient] = None
_async: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncMoltClient]" = weakref.WeakKeyDictionary()

# settings the worker's command line (DSNs, session time zones) comes from
_WATCHED = {"MOLT_DB", "DATABASES", "USE_TZ", "TIME_ZONE"}


_config_dir: Optional[str] = None


def _config_file() -> str:
    """The worker's [db ...] sections in a file only this user can read, so
    no password shows in ps; kept while the process lives (a restarted
    worker reads it again)."""
    from .management.commands.molt_worker import worker_config

    global _config_dir
    if _config_dir is None:
        _config_dir = tempfile.mkdtemp(prefix="molt-django-")
        atexit.register(shutil.rmtree, _config_dir, True)
    fd, path = tempfile.mkstemp(suffix=".conf", dir=_config_dir)
    with os.fdopen(fd, "w") as f:
        f.write(worker_config(worker_args()))
    return path


def _new_client(cls: Any) -> Any:
    conf = molt_settings()
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


def get_async_client() -> AsyncMoltClient:
    """The shared AsyncMoltClient of the running event loop."""
    loop = asyncio.get_running_loop()
    with _lock:
        client = _async.get(loop)
        if client is None:
            client = _async[loop] = _new_client(AsyncMoltClient)
        return client


def close_clients() -> None:
    """Close the sync client and forget the async ones (their loops close
    them when they end; a new one is made on next use)."""
    global _sync
    with _lock:
        old, _sync = _sync, None
        stale = list(_async.items())
        _async.clear()
    forget_functions()
    if old is not None:
        old.close()
    for loop, client in stale:
        if not loop.is_closed() and loop.is_running():
            loop.create_task(client.close())


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _WATCHED:
        close_clients()
