"""Django's test suite on the PostgreSQL of MOLT_TEST_DSN (its test
databases are made on that server, named after DJSUITE_RUN)."""

import os

from psycopg.conninfo import conninfo_to_dict

from settings_common import *  # noqa: F401,F403
from settings_common import engine

_pg = conninfo_to_dict(os.environ["MOLT_TEST_DSN"])
# scripts/django_suite.sh runs several at once: test databases of their own
_run = os.environ.get("DJSUITE_RUN", "run")
DATABASES = {
    alias: {"ENGINE": engine("postgresql"), "NAME": _pg.get("dbname", ""), "USER": _pg.get("user", ""),
            "PASSWORD": _pg.get("password", ""), "HOST": _pg.get("host", ""), "PORT": _pg.get("port", ""),
            "OPTIONS": {k: _pg[k] for k in ("sslmode",) if k in _pg},
            "TEST": {"NAME": f"test_djsuite_{_run}_{alias}"}}
    for alias in ("default", "other")
}
# MOLT_TEST_DSN's role is a superuser, which the worker refuses by default
MOLT_DB = {**MOLT_DB, "POOL": {alias: {"allow_privileged_role": "true"} for alias in DATABASES}}  # noqa: F405
