"""Which SQLite SQL may run in the worker.

Django's SQLite SQL calls functions Django registers on its own connection
(django.db.backends.sqlite3._functions.register). The worker registers C
equivalents, with Django's semantics, of the names in
``WORKER_DJANGO_FUNCTIONS``: the one list of what is supported. A statement
may go to the worker when every function it calls is either
- in WORKER_DJANGO_FUNCTIONS and present in the worker, or
- not one Django registers (a SQLite built-in) and present in the worker
  (same libsqlite3 semantics on both sides).
Anything else (STDDEV_POP, VAR_SAMP, RAND -- random order cannot be
compared anyway --, a function the worker lacks) keeps the statement on the ORM, with the reason logged.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional

WORKER_DJANGO_FUNCTIONS = frozenset(
    name.lower()
    for name in (
        "django_date_extract", "django_date_trunc", "django_datetime_cast_date",
        "django_datetime_cast_time", "django_datetime_extract", "django_datetime_trunc",
        "django_time_extract", "django_time_trunc", "django_time_diff",
        "django_timestamp_diff", "django_format_dtdelta", "regexp",
        "LPAD", "RPAD", "REPEAT", "REVERSE",
        "MD5", "SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "SIGN", "COT", "BITXOR",
        # the math functions Django registers only when SQLite lacks them
        "ACOS", "ASIN", "ATAN", "ATAN2", "CEILING", "COS", "DEGREES", "EXP", "FLOOR",
        "LN", "LOG", "MOD", "PI", "POWER", "RADIANS", "SIN", "SQRT", "TAN",
    )
)

# words that may stand before "(" without being a function call
_KEYWORDS = frozenset(
    """all and any as between by case cast collate distinct else end escape except exists
    filter from glob group having in intersect is join like limit match not null offset on
    or order over partition range rows select then union using values when where window
    with""".split()
)

# string literals and quoted identifiers (skipped), words, and "("
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|--[^\n]*|/\*.*?\*/|([A-Za-z_][A-Za-z0-9_$]*)\s*(\()?""",
    re.S,
)


def called_functions(sql: str) -> set[str]:
    """Lower-case names of the functions the statement calls (REGEXP and
    MATCH operators call regexp() and match())."""
    names = set()
    for m in _TOKENS.finditer(sql):
        word = m.group(1)
        if word is None:
            continue
        low = word.lower()
        if m.group(2) and low not in _KEYWORDS:
            names.add(low)
        elif low in ("regexp", "match"):
            names.add(low)
    return names


class _Recorder:
    """Stands in for a sqlite3 connection to learn what Django registers."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def create_function(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.names.add(name.lower())

    create_aggregate = create_function

    def execute(self, sql: str) -> Any:
        class _Answer:   # "SQLite lacks the math functions": record those too
            @staticmethod
            def fetchone() -> tuple[int]:
                return (0,)
        return _Answer()


def django_registered() -> frozenset[str]:
    from django.db.backends.sqlite3 import _functions  # type: ignore[attr-defined]  # private: not in django-stubs

    rec = _Recorder()
    _functions.register(rec)
    return frozenset(rec.names)


def unsupported_reason(sql: str, worker_functions: Iterable[str], registered: frozenset[str]) -> Optional[str]:
    """None when the statement may run in the worker, else why not."""
    have = set(worker_functions)
    for name in sorted(called_functions(sql)):
        if name in registered:
            if name not in WORKER_DJANGO_FUNCTIONS:
                return f"{name}() is registered by Django and not implemented in the worker"
            if name not in have:
                return f"{name}() is not in this worker yet"
        elif name not in have:
            return f"{name}() is unknown to the worker's SQLite"
    return None


# ---- where Django versions differ ----

class RejectedTimeZoneName(str):
    """A time zone name Django 4.2's own SQLite functions raise on, in
    the parameters of a django_date*/django_time* call. The worker follows
    Django 5.x (a name that is only an offset, like "-05" or "+03:00",
    converts to the connection's zone); a statement with one runs on the
    ORM, which raises as Django does."""


def tzname_param(tzname: Optional[str], conn_tzname: Optional[str]) -> Optional[str]:
    """tzname as a parameter of Django's SQLite time functions: marked
    when this Django would raise on it and the worker would not."""
    import django

    if django.VERSION >= (5, 0) or tzname is None or tzname == conn_tzname:
        return tzname
    return RejectedTimeZoneName(tzname) if _django42_rejects(tzname) else tzname


def _django42_rejects(tzname: str) -> bool:
    """What Django 4.2's _sqlite_datetime_parse does with tzname."""
    import datetime

    from django.db.backends.base.base import timezone_constructor  # type: ignore[attr-defined]  # not in django-stubs
    from django.db.backends.utils import split_tzname_delta  # type: ignore[attr-defined]  # not in django-stubs

    name, _sign, offset = split_tzname_delta(tzname)
    try:
        if offset:
            hours, minutes = offset.split(":")
            datetime.timedelta(hours=int(hours), minutes=int(minutes))
        timezone_constructor(name)
    except Exception:   # ValueError, ZoneInfoNotFoundError, ...: Django raises
        return True
    return False
