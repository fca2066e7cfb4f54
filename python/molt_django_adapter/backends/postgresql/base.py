"""Django's PostgreSQL backend whose compilers can send reads to molt_worker."""

from django.db.backends.postgresql import base as _django
from django.db.backends.postgresql.operations import DatabaseOperations as _Operations


class DatabaseOperations(_Operations):
    compiler_module = "molt_django_adapter.backends.postgresql.compiler"


class DatabaseWrapper(_django.DatabaseWrapper):
    ops_class = DatabaseOperations
