"""A worker DbError as the Django exception class the same SQLSTATE gives
through Django's own backend (psycopg's classification by SQLSTATE class,
which Django re-raises as django.db.utils.*)."""

from __future__ import annotations

from django.db import utils

from molt_db_adapter import DbError

_BY_CLASS = {
    "23": utils.IntegrityError,
    "22": utils.DataError,
    "42": utils.ProgrammingError, "3F": utils.ProgrammingError, "2B": utils.ProgrammingError,
    "0A": utils.NotSupportedError,
    "08": utils.OperationalError, "40": utils.OperationalError, "53": utils.OperationalError,
    "55": utils.OperationalError, "57": utils.OperationalError, "58": utils.OperationalError,
    "25": utils.InternalError, "XX": utils.InternalError, "2D": utils.InternalError,
}


def django_error(e: DbError) -> utils.DatabaseError:
    cls = _BY_CLASS.get((e.sqlstate or "")[:2], utils.DatabaseError)
    err = cls(str(e))
    setattr(err, "sqlstate", e.sqlstate)   # an attribute Django's classes lack (docs/django.md)
    return err
