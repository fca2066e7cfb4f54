"""The API's value formats, once in Python (the ORM baseline) and once in
SQL (the offloaded endpoint, where the worker writes the JSON).

On PostgreSQL the worker already writes numeric as exact text, uuid as
lowercase dashed text and timestamptz as ISO 8601 in UTC with trailing
fraction zeros dropped, so the SQL side is the bare column there. Django's
SQLite columns hold REAL for decimals, 32 hex digits for UUIDs and
'YYYY-MM-DD HH:MM:SS[.ffffff]' text for datetimes: the SQLite templates turn
those into the same text.
"""
import datetime

from django.db.models import CharField, Func


def iso_utc(dt: datetime.datetime) -> str:
    """2024-05-01T10:00:00.25+00:00 (naive values are in TIME_ZONE, UTC)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(datetime.timezone.utc)
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        s += "." + f"{dt.microsecond:06d}".rstrip("0")
    return s + "+00:00"


class _Text(Func):
    template = "%(expressions)s"
    output_field = CharField()


class IsoUtc(_Text):
    def as_sqlite(self, compiler, connection, **extra):
        t = ("(CASE WHEN length(%(expressions)s) > 19 THEN rtrim(replace(%(expressions)s, ' ', 'T'), '0')"
             " ELSE replace(%(expressions)s, ' ', 'T') END || '+00:00')")
        return self.as_sql(compiler, connection, template=t, **extra)


class Money2(_Text):
    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="printf('%%.2f', %(expressions)s)", **extra)


class UuidText(_Text):
    def as_sqlite(self, compiler, connection, **extra):
        t = ("(substr(%(expressions)s, 1, 8) || '-' || substr(%(expressions)s, 9, 4) || '-' || "
             "substr(%(expressions)s, 13, 4) || '-' || substr(%(expressions)s, 17, 4) || '-' || "
             "substr(%(expressions)s, 21, 12))")
        return self.as_sql(compiler, connection, template=t, **extra)
