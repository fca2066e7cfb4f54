"""Django's SQLite backend whose compilers can send reads to molt_worker."""

from django.db.backends.sqlite3 import base as _django
from django.db.backends.sqlite3.creation import DatabaseCreation as _Creation
from django.db.backends.sqlite3.operations import DatabaseOperations as _Operations

from ..creation import WorkerAwareCreation


class DatabaseOperations(_Operations):
    compiler_module = "molt_django_adapter.backends.sqlite3.compiler"


class DatabaseCreation(WorkerAwareCreation, _Creation):
    pass


class DatabaseWrapper(_django.DatabaseWrapper):
    ops_class = DatabaseOperations
    creation_class = DatabaseCreation
