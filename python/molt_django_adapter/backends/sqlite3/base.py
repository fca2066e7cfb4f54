"""Django's SQLite backend whose compilers can send reads to molt_worker."""

from django.db.backends.sqlite3 import base as _django
from django.db.backends.sqlite3.operations import DatabaseOperations as _Operations


class DatabaseOperations(_Operations):
    compiler_module = "molt_django_adapter.backends.sqlite3.compiler"


class DatabaseWrapper(_django.DatabaseWrapper):
    ops_class = DatabaseOperations
