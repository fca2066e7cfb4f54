"""Settings: the MOLT_DB dict with its defaults, and the worker command line
derived from DATABASES (DSNs with the connection's time zone, pools,
write grants)."""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # "worker": a molt_worker process (WORKER_BIN, WORKER_CMD or SOCKET);
    # "inprocess": molt_db in this process (InProcessClient), same settings
    "TRANSPORT": "worker",
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
    "REPLICAS": {},
}

CHOICES = {
    "TRANSPORT": ("worker", "inprocess"),
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
    if merged["TRANSPORT"] == "inprocess" and (merged["SOCKET"] or merged["WORKER_CMD"]):
        raise ImproperlyConfigured(
            "MOLT_DB['TRANSPORT'] = 'inprocess' runs molt_db in this process: it takes no "
            "SOCKET or WORKER_CMD (the databases come from DATABASES, as for WORKER_BIN)")
    for replica, primary in merged["REPLICAS"].items():
        if primary in merged["REPLICAS"] or replica == primary:
            raise ImproperlyConfigured(
                f"MOLT_DB['REPLICAS']: {replica!r} -> {primary!r}: a replica's primary must be "
                "a Django alias that is not itself a replica")
    return merged


def worker_alias(django_alias: str) -> str:
    """The worker alias of a Django alias: WORKER_ALIASES, else a replica's
    (REPLICAS) primary's, else the same name."""
    conf = molt_settings()
    if django_alias in conf["WORKER_ALIASES"]:
        return str(conf["WORKER_ALIASES"][django_alias])
    if django_alias in conf["REPLICAS"]:
        return worker_alias(conf["REPLICAS"][django_alias])
    return django_alias


def pin_primary(django_alias: str) -> bool:
    """Reads Django sends to a primary that has replicas in REPLICAS stay on
    it; the replica aliases' reads are the worker's to place."""
    return django_alias in molt_settings()["REPLICAS"].values()


def _quote_kv(value: str) -> str:
    """A libpq key=value value, quoted."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class Uncarried(Exception):
    """The worker cannot read what this Django connection reads (a setting
    it cannot be given); the message says which. Its reads fall back."""


# libpq keys molt_db's conninfo takes (src/conninfo.c): passed on as given.
# Not here, so the alias falls back: service, sslcrl, sslcrldir,
# requirepeer, replication (molt_db refuses them; dropping one would
# connect elsewhere or check less than Django's connection).
_WORKER_LIBPQ_KEYS = frozenset((
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "channel_binding",
    "connect_timeout", "options", "application_name", "fallback_application_name",
    "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
    "sslmode", "sslcompression", "sslcert", "sslkey", "sslpassword", "sslrootcert", "sslsni",
    "sslcertmode", "ssl_min_protocol_version", "ssl_max_protocol_version", "gssencmode",
    "krbsrvname", "gsslib", "target_session_attrs", "load_balance_hosts",
))
# values of those keys molt_db refuses
_WORKER_REFUSED_VALUES = frozenset((("gssencmode", "require"),))
# OPTIONS keys Django itself consumes, none of which changes what a
# single autocommit read sees (assume_role is carried separately)
_DJANGO_ONLY_OPTIONS = frozenset((
    "assume_role", "isolation_level", "pool", "server_side_binding", "prepare_threshold",
    "cursor_factory", "context", "client_encoding",
))


def _startup_value(value: str) -> str:
    """A value inside the startup ``options`` string: the server splits it
    on whitespace, a backslash escaping the next character."""
    return re.sub(r"([\\\s])", r"\\\1", value)


def _django_conn_params(settings_dict: dict[str, Any]) -> dict[str, Any]:
    """The libpq parameters Django's PostgreSQL backend connects with
    (DatabaseWrapper.get_connection_params: OPTIONS over NAME, then USER,
    PASSWORD, HOST, PORT over OPTIONS)."""
    options = dict(settings_dict.get("OPTIONS") or {})
    name = settings_dict.get("NAME")
    if name:
        params = {"dbname": name, **options}
    elif name is None:
        options.pop("service", None)
        params = {"dbname": "postgres", **options}
    else:
        params = options
    for django_key, libpq_key in (("USER", "user"), ("PASSWORD", "password"), ("HOST", "host"), ("PORT", "port")):
        if settings_dict.get(django_key):
            params[libpq_key] = settings_dict[django_key]
    return params


def postgresql_dsn(settings_dict: dict[str, Any], timezone_name: str) -> str:
    """A key=value DSN for the worker with every connection setting that
    changes what Django's session sees: the server and database, OPTIONS'
    libpq keys, ``options`` (search_path, ...), and the role and time zone
    Django sets after connecting (assume_role, TIME_ZONE) as startup
    options (``-c role=... -c TimeZone=...``, last so that they win as
    Django's SET ROLE / SET TIME ZONE do). Raises Uncarried for an OPTIONS
    key it cannot pass on."""
    params = _django_conn_params(settings_dict)
    parts = []
    for key, value in params.items():
        if key in _DJANGO_ONLY_OPTIONS or key == "options" or value in (None, ""):
            continue
        if key not in _WORKER_LIBPQ_KEYS or (key, str(value)) in _WORKER_REFUSED_VALUES:
            raise Uncarried(f"OPTIONS[{key!r}] cannot be given to the worker")
        parts.append(f"{key}={_quote_kv(value)}")
    startup = [str(params["options"])] if params.get("options") else []
    role = params.get("assume_role")
    if role:
        startup.append(f"-c role={_startup_value(str(role))}")
    startup.append(f"-c TimeZone={_startup_value(timezone_name)}")
    parts.append("options=" + _quote_kv(" ".join(startup)))
    return " ".join(parts)


def sqlite_dsn(settings_dict: dict[str, Any]) -> str:
    """Raises Uncarried for an in-memory or URI database (Django's default
    test database): the worker cannot share it."""
    name = str(settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
        raise Uncarried("an in-memory or URI SQLite database cannot be shared with the worker")
    return "sqlite://" + os.path.abspath(name)


def molt_aliases() -> dict[str, str]:
    """Django alias -> 'postgresql' / 'sqlite' for every molt database."""
    return {
        alias: MOLT_ENGINES[conf["ENGINE"]]
        for alias, conf in settings.DATABASES.items()
        if conf.get("ENGINE") in MOLT_ENGINES
    }


def worker_target(alias: str) -> str:
    """The DSN that makes the worker read what Django's connection for
    alias reads now (its current settings_dict: a test database once the
    test runner switched NAME). Raises Uncarried."""
    from django.db import connections

    conn = connections[alias]
    if molt_aliases()[alias] == "postgresql":
        return postgresql_dsn(conn.settings_dict, conn.timezone_name)
    return sqlite_dsn(conn.settings_dict)


def worker_targets() -> dict[str, "str | Uncarried"]:
    """worker_target() of every molt database (the Uncarried when it has none)."""
    targets: dict[str, str | Uncarried] = {}
    for alias in molt_aliases():
        try:
            targets[alias] = worker_target(alias)
        except Uncarried as e:
            targets[alias] = e
    return targets


def worker_args(targets: "dict[str, str | Uncarried] | None" = None) -> list[str]:
    """The worker flags for every molt database in DATABASES that the
    worker can serve (worker_targets()): --db, --pool, --allow-write (no
    transport flag: add --stdio or --socket PATH). A SQLite database asks
    for Django's SQL functions (sqlite_django_functions), which the SQL
    Django compiles for SQLite calls."""
    conf = molt_settings()
    args: list[str] = []
    targets = worker_targets() if targets is None else targets
    for alias, dsn in targets.items():
        if isinstance(dsn, Uncarried):
            continue
        wa = worker_alias(alias)
        primary = conf["REPLICAS"].get(alias)
        if primary is not None:
            # served as a replica of its primary's worker alias, if that is
            if not isinstance(targets.get(primary, Uncarried("")), Uncarried):
                args += ["--db-replica", f"{wa}={dsn}"]
            continue
        args += ["--db", f"{wa}={dsn}"]
        if dsn.startswith("sqlite:"):
            args += ["--pool", f"{wa}:sqlite_django_functions=true"]
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
