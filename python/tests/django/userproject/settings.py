"""A user's project as `django-admin startproject` leaves it, switched to the
molt backends with offloading on for every read: its own `manage.py test`
must pass. Django's test runner gives a SQLite database without TEST NAME an
in-memory test database, which the worker cannot see; with MOLT_USERPROJECT_PG
the database is PostgreSQL, whose test database the worker follows."""

import os

from psycopg.conninfo import conninfo_to_dict

SECRET_KEY = "tests-only"
INSTALLED_APPS = ["shop"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("MOLT_USERPROJECT_PG"):
    _pg = conninfo_to_dict(os.environ["MOLT_USERPROJECT_PG"])
    DATABASES = {"default": {
        "ENGINE": "molt_django_adapter.backends.postgresql",
        "NAME": _pg.get("dbname", ""), "USER": _pg.get("user", ""),
        "PASSWORD": _pg.get("password", ""), "HOST": _pg.get("host", ""),
        "PORT": _pg.get("port", ""),
        "TEST": {"NAME": "test_molt_userproject"},
    }}
else:
    DATABASES = {"default": {
        "ENGINE": "molt_django_adapter.backends.sqlite3",
        "NAME": os.path.join(os.environ["MOLT_USERPROJECT_DIR"], "db.sqlite3"),
    }}

MOLT_DB = {
    "WORKER_BIN": os.environ.get("MOLT_WORKER_BIN") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), *[".."] * 4, "build", "molt_worker"),
    "OFFLOAD": "all",
    # the harness's DSN is a superuser, which the worker refuses by default
    "POOL": {"default": {"allow_privileged_role": "true"}},
}
