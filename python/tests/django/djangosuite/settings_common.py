"""Settings shared by Django's own test suite runs (scripts/django_suite.sh):
DJSUITE_BACKEND "django" (Django's backends) or "molt" (the adapter's,
with every read offloaded); MOLT_DECISIONS_LOG: a file that gets the
adapter's decision log (offloaded / fallback and why)."""

import logging
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
MOLT = os.environ.get("DJSUITE_BACKEND", "molt") == "molt"

SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
MOLT_DB = {
    "OFFLOAD": "all",
    "ALLOW_WRITE": ["default", "other"],
    "WORKER_BIN": os.environ.get("MOLT_WORKER_BIN") or os.path.join(ROOT, "build", "molt_worker"),
}


def engine(vendor: str) -> str:
    return f"molt_django_adapter.backends.{vendor}" if MOLT else f"django.db.backends.{vendor}"


if MOLT and os.environ.get("MOLT_DECISIONS_LOG"):   # runtests.py replaces LOGGING
    _log = logging.getLogger("molt_django_adapter")
    _log.setLevel(logging.DEBUG)
    _log.propagate = False
    _log.addHandler(logging.FileHandler(os.environ["MOLT_DECISIONS_LOG"]))
