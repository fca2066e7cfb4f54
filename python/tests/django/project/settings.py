"""The Django project the adapter's tests run in: a SQLite file (alias
"default") and, when MOLT_TEST_DSN names a server, PostgreSQL (alias "pg"),
both on the molt backends, with one molt_worker serving both."""

import os
import tempfile

from psycopg.conninfo import conninfo_to_dict

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
SQLITE_PATH = os.environ.get("MOLT_DJANGO_SQLITE") or os.path.join(
    tempfile.mkdtemp(prefix="molt-django-"), "parity.db"
)

SECRET_KEY = "tests-only"
INSTALLED_APPS = ["parity"]
USE_TZ = True
TIME_ZONE = "Europe/Paris"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "molt_django_adapter.backends.sqlite3",
        "NAME": SQLITE_PATH,
        "TEST": {"NAME": SQLITE_PATH},
    },
    # a database with a test database of its own (a file, so the worker can read it)
    "other": {
        "ENGINE": "molt_django_adapter.backends.sqlite3",
        "NAME": os.path.join(os.path.dirname(SQLITE_PATH), "other.db"),
        "TEST": {"NAME": os.path.join(os.path.dirname(SQLITE_PATH), "test_other.db")},
    },
    # in memory: the worker cannot share it
    "memory": {"ENGINE": "molt_django_adapter.backends.sqlite3", "NAME": ":memory:"},
}

_dsn = os.environ.get("MOLT_TEST_DSN")
if _dsn:
    _pg = conninfo_to_dict(_dsn)
    DATABASES["pg"] = {
        "ENGINE": "molt_django_adapter.backends.postgresql",
        "NAME": _pg.get("dbname", ""),
        "USER": _pg.get("user", ""),
        "PASSWORD": _pg.get("password", ""),
        "HOST": _pg.get("host", ""),
        "PORT": _pg.get("port", ""),
        "OPTIONS": {k: _pg[k] for k in ("sslmode",) if k in _pg},
    }
    # the same database through a connection with its own TIME_ZONE (USE_TZ only)
    DATABASES["pg_chicago"] = {**DATABASES["pg"], "TIME_ZONE": "America/Chicago"}
    # the same database as a role without rights to every row (row-level security)
    DATABASES["pg_reader"] = {**DATABASES["pg"], "OPTIONS": {**DATABASES["pg"]["OPTIONS"], "assume_role": "molt_django reader"}}
    # the same database with another schema first on the search_path
    DATABASES["pg_schema"] = {**DATABASES["pg"], "OPTIONS": {**DATABASES["pg"]["OPTIONS"], "options": "-c search_path=molt_django_schema,public"}}
    # the same server with a test database of its own
    DATABASES["pg_other"] = {**DATABASES["pg"], "OPTIONS": dict(DATABASES["pg"]["OPTIONS"]), "TEST": {"NAME": "test_molt_django_other"}}
    # a streaming replica of it (scripts/with_pg_replicas.sh): test_replicas.py
    # routes reads there with DATABASE_ROUTERS and MOLT_DB["REPLICAS"]
    _replica = os.environ.get("MOLT_TEST_REPLICA1_DSN")
    if _replica:
        _r = conninfo_to_dict(_replica)
        DATABASES["pg_replica"] = {**DATABASES["pg"], "OPTIONS": dict(DATABASES["pg"]["OPTIONS"]),
                                   "HOST": _r.get("host", ""), "PORT": _r.get("port", ""),
                                   "TEST": {"MIRROR": "pg"}}

MOLT_DB = {
    # MOLT_DJANGO_TRANSPORT=inprocess (scripts/test.sh, stages django-inprocess
    # and django42-inprocess): the same suites on the in-process client
    "TRANSPORT": os.environ.get("MOLT_DJANGO_TRANSPORT") or "worker",
    "WORKER_BIN": os.environ.get("MOLT_WORKER_BIN") or os.path.join(ROOT, "build", "molt_worker"),
    "ALLOW_WRITE": list(DATABASES),
    # MOLT_TEST_DSN's role is a superuser, which the worker refuses by default
    # (pg_reader assumes a role without those rights: the check sees that role)
    "POOL": {a: {"allow_privileged_role": "true"} for a in DATABASES
             if a.startswith("pg") and a != "pg_reader"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"molt_django_adapter": {"level": "INFO"}},
}
