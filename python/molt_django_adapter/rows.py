"""Worker rows as the Python values Django's own driver would have given,
so Django's converters, from_db() and annotations run unchanged.

PostgreSQL (psycopg 3 as Django configures it): numeric Decimal, uuid UUID,
date/time/timestamp objects, timestamptz aware in the session time zone and
then given the connection's tzinfo (or made naive when USE_TZ is off), as
Django's timestamptz loader does; jsonb, inet and cidr as text (Django
registers text loaders for them); json parsed; interval a timedelta;
arrays as lists. SQLite: the sqlite3 module's values, with the converters
registered for the column's declared type (Django registers bool, date,
time, datetime, timestamp) applied as PARSE_DECLTYPES would.

A value or type that has no faithful conversion raises Unconvertible: the
query then runs through the ORM instead.

On PostgreSQL the C decoder (molt_db_adapter/c_rows.py, the table in
python/ext/rows/row_types.c) gives these same values straight from the
payload when it is built; the converters here are its fallback.
"""

from __future__ import annotations

import datetime
import decimal
import json
import operator
import sqlite3
import uuid
import zoneinfo
from typing import Any, Callable, Optional, Sequence, TypeVar

Converter = Callable[[Any], Any]
T = TypeVar("T")


class Unconvertible(Exception):
    pass


def _need(kind: type[T], v: Any, what: str) -> T:
    if not isinstance(v, kind):
        raise Unconvertible(f"{what} value {v!r} from the worker")
    return v


def _numeric(v: Any) -> decimal.Decimal:
    return decimal.Decimal(_need(str, v, "numeric"))


def _uuid(v: Any) -> uuid.UUID:
    return uuid.UUID(_need(str, v, "uuid"))


def _date(v: Any) -> datetime.date:
    try:
        return datetime.date.fromisoformat(_need(str, v, "date"))
    except ValueError:   # infinity, BC dates: psycopg refuses them too
        raise Unconvertible(f"date {v!r}") from None


def _time(v: Any) -> datetime.time:
    return datetime.time.fromisoformat(_need(str, v, "time"))


def _timestamp(v: Any) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(_need(str, v, "timestamp"))
    except ValueError:
        raise Unconvertible(f"timestamp {v!r}") from None


def _interval(v: Any) -> datetime.timedelta:
    # psycopg: a month is 30 days and a year 365 (so 12 months are 365 days)
    months, days, micros = (_need(dict, v, "interval")[k] for k in ("months", "days", "micros"))
    years, months = divmod(abs(months), 12)
    sign = -1 if v["months"] < 0 else 1
    return datetime.timedelta(days=days + sign * (365 * years + 30 * months), microseconds=micros)


def _identity(v: Any) -> Any:
    return v


def _bytes(v: Any) -> bytes:
    return _need(bytes, v, "bytea")


def _json(v: Any) -> Any:
    return json.loads(_need(str, v, "json"))


_PG_SCALARS: dict[str, Converter] = {
    "bool": _identity, "int2": _identity, "int4": _identity, "int8": _identity,
    "oid": _identity, "float4": _identity, "float8": _identity,
    "text": _identity, "varchar": _identity, "bpchar": _identity, "name": _identity,
    "char": _identity, "xml": _identity, "jsonb": _identity,
    "inet": _identity, "cidr": _identity,   # text: Django registers text loaders for them
    "numeric": _numeric, "uuid": _uuid, "bytea": _bytes, "json": _json,
    "date": _date, "time": _time, "timetz": _time, "timestamp": _timestamp,
    "interval": _interval,
}


def json_field(v: Any) -> Any:
    """What JSONField.from_db_value makes of a column's value (the adapter
    then skips that converter): the JSON text parsed, text that is not JSON
    kept. Any other value is Unconvertible (the ORM then decides)."""
    try:
        return json.loads(_need(str, v, "JSONField"))
    except json.JSONDecodeError:
        return v


def with_json_fields(converters: list[Converter], types: Sequence[str], columns: Sequence[int]) -> list[Converter]:
    """``converters`` with json_field on ``columns``, which must be columns
    whose own conversion passes the value through (jsonb, text...)."""
    out = list(converters)
    for i in columns:
        if i < len(out):
            if out[i] is not _identity:
                raise Unconvertible(f"a JSONField over a column of type {types[i]}")
            out[i] = json_field
    return out


def _array(elem: Converter) -> Converter:
    def convert(v: Any) -> Any:
        if isinstance(v, list):
            return [None if x is None else convert(x) if isinstance(x, list) else elem(x) for x in v]
        raise Unconvertible("an array with lower bounds other than 1")
    return convert


def session_zone(session_tz: str) -> datetime.tzinfo:
    return zoneinfo.ZoneInfo(session_tz) if session_tz != "UTC" else datetime.timezone.utc


def pg_converters(types: Sequence[str], session_tz: str, django_tz: Optional[datetime.tzinfo]) -> list[Converter]:
    """One converter per column; ``session_tz`` is the worker session's zone
    (the Django connection's timezone_name), ``django_tz`` the tzinfo
    Django's loader puts on timestamptz values (None when USE_TZ is off)."""
    zone = session_zone(session_tz)

    def timestamptz(v: Any) -> datetime.datetime:
        if not isinstance(v, datetime.datetime):
            raise Unconvertible(f"timestamptz {v!r}")
        return v.astimezone(zone).replace(tzinfo=django_tz)

    def one(t: str) -> Converter:
        if t == "timestamptz":
            return timestamptz
        if t in _PG_SCALARS:
            return _PG_SCALARS[t]
        if t.startswith("_"):
            return _array(one(t[1:]))
        raise Unconvertible(f"column type {t} has no conversion")

    return [one(t) for t in types]


# ---- SQLite ----

def _sqlite_text(v: Any) -> bytes:
    """The bytes sqlite3 hands a converter (sqlite3_column_blob)."""
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Unconvertible(f"SQLite value {v!r}")
    if isinstance(v, int):
        return str(v).encode()
    text = format(v, ".15g")     # SQLite's "%!.15g"
    if "." not in text and "e" not in text and "n" not in text:
        text += ".0"
    return text.encode()


def sqlite_converters(types: Sequence[str]) -> list[Optional[Converter]]:
    """PARSE_DECLTYPES: the converter registered for the declared type's
    first word, if any (the worker reports declared types in lower case;
    an expression's type is a storage class, which has none). A column of
    TEXT affinity without one gets _text_value."""
    out: list[Optional[Converter]] = []
    for t in types:
        word = t.split("(")[0].split(" ")[0].upper()
        conv = sqlite3.converters.get(word)
        if conv is not None:
            out.append(_decltype_converter(conv))
        else:
            out.append(_text_value if _text_affinity(t) else None)
    return out


def _decltype_converter(conv: Callable[[bytes], Any]) -> Converter:
    return lambda v: conv(_sqlite_text(v))


def _text_affinity(decltype: str) -> bool:
    """SQLite's affinity rules 1 and 2 (an expression's "text" included)."""
    t = decltype.upper()
    return "INT" not in t and any(w in t for w in ("CHAR", "CLOB", "TEXT"))


_TEXT_BYTES = "bytes in a TEXT column (a BLOB, or text that is not UTF-8)"


def _text_value(v: Any) -> Any:
    """The worker sends TEXT that is not UTF-8 as bytes, as it sends a
    BLOB: sqlite3 raises on the first ("Could not decode to UTF-8") and
    returns the second, so a TEXT column's bytes go through the ORM
    (convert_rows checks a whole column at once)."""
    if isinstance(v, bytes):
        raise Unconvertible(_TEXT_BYTES)
    return v


def convert_rows(rows: Sequence[Sequence[Any]], converters: Sequence[Optional[Converter]]) -> list[tuple[Any, ...]]:
    for i, c in enumerate(converters):
        if c is _text_value and bytes in set(map(type, map(operator.itemgetter(i), rows))):
            raise Unconvertible(_TEXT_BYTES)
    pairs = [(i, c) for i, c in enumerate(converters) if c is not None and c not in (_identity, _text_value)]
    if not pairs:
        return [tuple(r) for r in rows]
    out = []
    for r in rows:
        row = list(r)
        for i, c in pairs:
            if row[i] is not None:
                row[i] = c(row[i])
        out.append(tuple(row))
    return out
