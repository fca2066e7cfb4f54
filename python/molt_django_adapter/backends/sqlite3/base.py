"""Django's SQLite backend whose compilers can send reads to molt_worker."""

from typing import Optional

from django.db.backends.sqlite3 import base as _django
from django.db.backends.sqlite3.creation import DatabaseCreation as _Creation
from django.db.backends.sqlite3.operations import DatabaseOperations as _Operations

from ...sqlite_functions import tzname_param
from ..creation import WorkerAwareCreation


class DatabaseOperations(_Operations):
    compiler_module = "molt_django_adapter.backends.sqlite3.compiler"

    def _convert_tznames_to_sql(self, tzname: Optional[str]) -> tuple[Optional[str], Optional[str]]:
        tz, conn_tz = super()._convert_tznames_to_sql(tzname)  # type: ignore[misc]  # private: not in django-stubs
        return tzname_param(tz, conn_tz), conn_tz


class DatabaseCreation(WorkerAwareCreation, _Creation):
    pass


class DatabaseWrapper(_django.DatabaseWrapper):
    ops_class = DatabaseOperations
    creation_class = DatabaseCreation
