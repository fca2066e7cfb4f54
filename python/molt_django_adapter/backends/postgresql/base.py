"""Django's PostgreSQL backend whose compilers can send reads to molt_worker."""

from django.db.backends.postgresql import base as _django
from django.db.backends.postgresql.creation import DatabaseCreation as _Creation
from django.db.backends.postgresql.operations import DatabaseOperations as _Operations

from ..creation import WorkerAwareCreation


class DatabaseOperations(_Operations):
    compiler_module = "molt_django_adapter.backends.postgresql.compiler"


class DatabaseCreation(WorkerAwareCreation, _Creation):
    pass


class DatabaseWrapper(_django.DatabaseWrapper):
    ops_class = DatabaseOperations
    creation_class = DatabaseCreation
