"""Settings: the MOLT_DB dict with its defaults, and the worker command line
derived from DATABASES (DSNs with the connection's time zone, pools,
write grants)."""

from __future__ import annotations

import os
import shlex
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    "WORKER_CMD": None,
    "WORKER_BIN": "molt_worker",
    "SOCKET": None,
    "OFFLOAD": "marked",
    "IN_ATOMIC": "fallback",
    "ON_UNAVAILABLE": "fallback",
    "PARAM_BINDING": "client",
    "TIMEOUT_MS": None,
    "MAX_ROWS": 10_000_000,
    "WORKER_ALIASES": {},
    "POOL": {},
    "ALLOW_WRITE": [],
}

CHOICES = {
    "OFFLOAD": ("marked", "all"),
    "IN_ATOMIC": ("fallback", "raise"),
    "ON_UNAVAILABLE": ("fallback", "raise"),
    "PARAM_BINDING": ("client", "server"),
}

MOLT_ENGINES = {
    "molt_django_adapter.backends.postgresql": "postgresql",
    "molt_django_adapter.backends.sqlite3": "sqlite",
}


_cache: dict[str, Any] = {}


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == "MOLT_DB":
        _cache.clear()


def molt_settings() -> dict[str, Any]:
    """MOLT_DB merged over the defaults (read once; override_settings
    resets it); an unknown key or value is an error."""
    if "merged" not in _cache:
        _cache["merged"] = _read_settings()
    merged: dict[str, Any] = _cache["merged"]
    return merged


def _read_settings() -> dict[str, Any]:
    given = getattr(settings, "MOLT_DB", {}) or {}
    unknown = set(given) - set(DEFAULTS)
    if unknown:
        raise ImproperlyConfigured(f"MOLT_DB: unknown setting(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    merged = {**DEFAULTS, **given}
    for key, allowed in CHOICES.items():
        if merged[key] not in allowed:
            raise ImproperlyConfigured(f"MOLT_DB[{key!r}] is {merged[key]!r}; use one of {allowed}")
    return merged


def worker_alias(django_alias: str) -> str:
    return str(molt_settings()["WORKER_ALIASES"].get(django_alias, django_alias))


def _quote_kv(value: str) -> str:
    """A libpq key=value value, quoted."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# DATABASES[...]["OPTIONS"] keys that are libpq connection keys (passed on)
_LIBPQ_OPTIONS = (
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "connect_timeout",
    "application_name", "target_session_attrs", "passfile", "channel_binding",
    "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
)


def postgresql_dsn(settings_dict: dict[str, Any], timezone_name: str) -> str:
    """A key=value DSN for the worker: the Django connection's server, and
    its session time zone (``options=-c TimeZone=...``) so that SQL that
    depends on the session zone gives what Django's own connection gives."""
    parts = []
    keys = {"HOST": "host", "PORT": "port", "NAME": "dbname", "USER": "user", "PASSWORD": "password"}
    for django_key, libpq_key in keys.items():
        value = settings_dict.get(django_key)
        if value:
            parts.append(f"{libpq_key}={_quote_kv(value)}")
    options = settings_dict.get("OPTIONS") or {}
    for key in _LIBPQ_OPTIONS:
        if options.get(key) not in (None, ""):
            parts.append(f"{key}={_quote_kv(options[key])}")
    extra = options.get("options", "")
    parts.append("options=" + _quote_kv(f"-c TimeZone={timezone_name} {extra}".strip()))
    return " ".join(parts)


def sqlite_dsn(settings_dict: dict[str, Any]) -> str:
    name = str(settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file:"):
        raise ImproperlyConfigured(
            "molt_django_adapter: an in-memory or URI SQLite database cannot be shared with "
            "the worker; use a file path"
        )
    return "sqlite://" + os.path.abspath(name)


def molt_aliases() -> dict[str, str]:
    """Django alias -> 'postgresql' / 'sqlite' for every molt database."""
    return {
        alias: MOLT_ENGINES[conf["ENGINE"]]
        for alias, conf in settings.DATABASES.items()
        if conf.get("ENGINE") in MOLT_ENGINES
    }


def worker_args() -> list[str]:
    """The worker flags for every molt database in DATABASES: --db, --pool,
    --allow-write (no transport flag: add --stdio or --socket PATH)."""
    from django.db import connections

    conf = molt_settings()
    args: list[str] = []
    for alias, vendor in molt_aliases().items():
        wa = worker_alias(alias)
        conn = connections[alias]
        if vendor == "postgresql":
            dsn = postgresql_dsn(conn.settings_dict, conn.timezone_name)
        else:
            dsn = sqlite_dsn(conn.settings_dict)
        args += ["--db", f"{wa}={dsn}"]
        for name, value in (conf["POOL"].get(alias) or {}).items():
            args += ["--pool", f"{wa}:{name}={value}"]
        if alias in conf["ALLOW_WRITE"]:
            args += ["--allow-write", wa]
    return args


def worker_command() -> list[str]:
    """The command a client spawns on stdio: WORKER_CMD, or WORKER_BIN with
    worker_args()."""
    conf = molt_settings()
    if conf["WORKER_CMD"]:
        cmd = conf["WORKER_CMD"]
        return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    return [conf["WORKER_BIN"], "--stdio", *worker_args()]
