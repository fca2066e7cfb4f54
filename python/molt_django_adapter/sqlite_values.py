"""SQLite: rows as the final values Django's SQLite backend gives, so the
compiler skips the converters whose work is then done.

Django reads a SQLite value in two steps: the sqlite3 driver's converter for
the column's declared type (rows.py, sqlite_converters), then the backend's
or field's converter of the selected expression (the date/time parsers,
make_aware with USE_TZ, UUID, bool, DurationField's microseconds,
JSONField.from_db_value). final_columns() picks, per selected expression,
the first of Django's converters when it is one of these and not replaced
by a subclass; sqlite_plans() composes it after the driver's converter.

A plan is (kind, convert, tz): ``convert`` is that exact composition, and
``kind`` names the spelling the C decoder (python/ext/rows/row_sqlite.h)
builds itself: Django's own text for dates and times, 0/1 for booleans,
UUID hex, integer microseconds, JSON text, a decimal's int or float (with
the steps of Django's converter, taken from its closure). Anything else goes to
``convert``, so C and this module give the same values by construction;
without the C decoder, execution.py runs the ``convert`` functions.
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from django.conf import settings
from django.db.models import JSONField
from django.db.models.expressions import Col

from .rows import Converter, _text_value, sqlite_converters

Plan = Optional[tuple[str, Converter, Any]]


@functools.cache
def _django_decltypes() -> dict[str, tuple[Any, str]]:
    """The sqlite3 converters Django registered, by declared type word, and
    the spelling each reads that C builds too (read once Django's SQLite
    backend, which registers them, is imported)."""
    from django.db.backends.sqlite3 import base  # noqa: F401

    return {word: (sqlite3.converters.get(word), kind) for word, kind in
            (("DATETIME", "datetime"), ("TIMESTAMP", "datetime"), ("DATE", "date"),
             ("TIME", "time"), ("BOOL", "bool"))}


@functools.cache
def _ops_kinds() -> dict[Any, str]:
    """Django's converter methods (bound to connection.ops) and their kind."""
    from django.db.backends.base.operations import BaseDatabaseOperations
    from django.db.backends.sqlite3.operations import DatabaseOperations

    return {
        DatabaseOperations.convert_datetimefield_value: "datetime",
        DatabaseOperations.convert_datefield_value: "date",
        DatabaseOperations.convert_timefield_value: "time",
        DatabaseOperations.convert_uuidfield_value: "uuid",
        DatabaseOperations.convert_booleanfield_value: "bool",
        BaseDatabaseOperations.convert_durationfield_value: "duration",
    }


_DECIMAL_CONVERTER = "DatabaseOperations.get_decimalfield_converter.<locals>.converter"


@dataclass(frozen=True)
class FinalValue:
    """A column's Django converter, done while the rows are built."""

    kind: str                          # a spelling of row_sqlite.h, or "call"
    django: Callable[[Any], Any]       # the converter on one driver value
    arg: Any = None                    # "datetime": the tzinfo make_aware puts on (None: naive);
                                       # "decimal": (create, quantum, context)


def final_columns(connection: Any, expressions: Sequence[Any], converters: dict[int, Any]) -> dict[int, FinalValue]:
    """The columns (select positions) whose first converter of ``converters``
    (Django's get_converters() of ``expressions``) the rows can hold done."""
    out = {}
    for i, (fns, expr) in converters.items():
        kind = _kind_of(connection, expr, fns[0])
        arg = None
        if kind == "datetime":
            arg = _datetime_tz(connection)
        elif kind == "decimal":
            arg = _decimal_steps(fns[0], expr)
            kind = "decimal" if arg is not None else "call"
        if kind is not None:
            out[i] = FinalValue(kind, _bound(fns[0], expr, connection), arg)
    return out


def _kind_of(connection: Any, expr: Any, fn: Any) -> Optional[str]:
    func = getattr(fn, "__func__", None)
    kinds = _ops_kinds()
    if func in kinds and fn.__self__ is connection.ops:
        return kinds[func]
    if func is JSONField.from_db_value and isinstance(expr, Col) and getattr(expr.output_field, "decoder", None) is None:
        return "json_field"   # (a key transform's value is not parsed the same way)
    if getattr(fn, "__qualname__", "") == _DECIMAL_CONVERTER:
        return "decimal"
    return None


def _decimal_steps(fn: Any, expr: Any) -> Optional[tuple[Any, Any, Any]]:
    """(create, quantum, context) of get_decimalfield_converter's closure:
    create_decimal(value).quantize(quantize_value, context=the field's
    context), or create_decimal(value) (quantum None) for an expression."""
    cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ())))
    if "create_decimal" not in cells:
        return None
    if "quantize_value" not in cells:
        return (cells["create_decimal"], None, None)
    return (cells["create_decimal"], cells["quantize_value"], expr.output_field.context)


def _datetime_tz(connection: Any) -> Any:
    """What convert_datetimefield_value's make_aware puts on a naive value;
    a pytz zone (Django 4.2 with USE_DEPRECATED_PYTZ) localizes instead."""
    if not settings.USE_TZ:
        return None
    tz = connection.timezone
    return "localize" if hasattr(tz, "localize") else tz


def _bound(fn: Any, expr: Any, connection: Any) -> Callable[[Any], Any]:
    return lambda v: fn(v, expr, connection)


def skip_converters(converters: dict[int, Any], finals: dict[int, FinalValue], expressions: Sequence[Any]) -> dict[int, Any]:
    """Django's converters less the first of each column in ``finals``."""
    for i in finals:
        if i in converters and i < len(expressions) and converters[i][1] is expressions[i]:
            rest = converters[i][0][1:]
            if rest:
                converters[i] = (rest, converters[i][1])
            else:
                del converters[i]
    return converters


def sqlite_plans(types: Sequence[str], finals: dict[int, FinalValue]) -> tuple[Plan, ...]:
    """One plan per result column (its declared type, or a storage class for
    an expression), with ``finals`` composed after the driver's converter."""
    drivers = sqlite_converters(types)
    return tuple(_plan(t, drivers[i], finals.get(i)) for i, t in enumerate(types))


def _plan(decltype: str, driver: Optional[Converter], final: Optional[FinalValue]) -> Plan:
    word = decltype.split("(")[0].split(" ")[0].upper()
    registered, driver_kind = _django_decltypes().get(word, (None, None))
    djangos = driver is not None and driver is not _text_value and sqlite3.converters.get(word) is registered
    if final is None:
        if driver is None:
            return None
        if driver is _text_value:
            return ("text", driver, None)
        return (driver_kind if djangos and driver_kind else "call", driver, None)
    convert = final.django if driver is None else _compose(driver, final.django)
    # C reads the text itself only where the driver's converter reads the
    # same spelling the same way (none, a TEXT column's check, or Django's own)
    same_reading = driver is None or driver is _text_value or (djangos and driver_kind == final.kind)
    kind = final.kind if same_reading and final.arg != "localize" else "call"
    return (kind, convert, final.arg if kind in ("datetime", "decimal") else None)


def _compose(driver: Converter, django: Callable[[Any], Any]) -> Converter:
    return lambda v: django(driver(v))

