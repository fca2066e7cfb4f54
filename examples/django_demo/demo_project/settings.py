"""Settings of the molt demo project.

The database comes from the environment so the same project runs on SQLite
(the default, for `make demo`) and on PostgreSQL (tests, `make bench`):

    MOLT_DEMO_PG_DSN=postgresql://user:pw@host:port/dbname   PostgreSQL
    MOLT_DEMO_SQLITE=/path/demo.db                          SQLite file (default .tmp/django_demo/demo.db)
    MOLT_DEMO_SOCKET=/path/molt.sock                        the worker's socket
    MOLT_DEMO_USE_TZ=0                                      USE_TZ off (the default is on)
    MOLT_DEMO_TRANSPORT=inprocess                           molt_db in the Django process (no worker, no socket)
"""
import os
import pathlib
from urllib.parse import unquote, urlsplit

HERE = pathlib.Path(__file__).resolve().parent.parent
ROOT = HERE.parents[1]
TMP = pathlib.Path(os.environ.get("MOLT_DEMO_TMP", ROOT / ".tmp" / "django_demo"))

SECRET_KEY = "demo-only-not-secret"
DEBUG = os.environ.get("MOLT_DEMO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = ["molt_django_adapter", "catalog"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "demo_project.urls"
WSGI_APPLICATION = "demo_project.wsgi.application"
ASGI_APPLICATION = "demo_project.asgi.application"
USE_TZ = os.environ.get("MOLT_DEMO_USE_TZ", "1") == "1"
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _pg(dsn):
    u = urlsplit(dsn)
    return {
        "ENGINE": "molt_django_adapter.backends.postgresql",
        "NAME": u.path.lstrip("/"),
        "USER": unquote(u.username or ""),
        "PASSWORD": unquote(u.password or ""),
        "HOST": u.hostname or "",
        "PORT": str(u.port or ""),
        "CONN_MAX_AGE": 600,
        "TEST": {"NAME": "test_django_demo"},
    }


_POOL = {}
if os.environ.get("MOLT_DEMO_PG_DSN"):
    DATABASES = {"default": _pg(os.environ["MOLT_DEMO_PG_DSN"])}
    # the tests' MOLT_TEST_DSN is a superuser, which the worker refuses by
    # default; a deployment connects as a role without superuser instead
    _POOL = {"default": {"allow_privileged_role": "true"}}
else:
    _db = os.environ.get("MOLT_DEMO_SQLITE", str(TMP / "demo.db"))
    # the worker opens the same file, so the test database is a file too
    DATABASES = {"default": {"ENGINE": "molt_django_adapter.backends.sqlite3", "NAME": _db,
                             "TEST": {"NAME": str(pathlib.Path(_db).with_name("test_demo.db"))}}}

MOLT_DB = {
    "SOCKET": os.environ.get("MOLT_DEMO_SOCKET", str(TMP / "molt.sock")),
    "WORKER_BIN": os.environ.get("MOLT_WORKER_BIN") or str(ROOT / "build" / "molt_worker"),
    "TIMEOUT_MS": 5000,
    "POOL": _POOL,
}
if os.environ.get("MOLT_DEMO_TRANSPORT") == "inprocess":
    MOLT_DB = {"TRANSPORT": "inprocess", "TIMEOUT_MS": 5000, "POOL": _POOL}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"molt_django_adapter": {"handlers": ["console"], "level": "WARNING"}},
}
