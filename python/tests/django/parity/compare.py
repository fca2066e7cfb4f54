"""Values as comparable, type-strict snapshots: a model instance by all its
attributes (and the related objects it caches), a datetime with its tzinfo,
a Decimal by its digits, every leaf with its type."""

import datetime
import decimal
from typing import Any

from django.db.models import Model, QuerySet


def snap(v: Any, _inside: tuple[int, ...] = ()) -> Any:
    if isinstance(v, Model):
        if id(v) in _inside:   # a prefetched object pointing back at its parent
            return ("back-reference", type(v).__name__, v.pk)
        inside = _inside + (id(v),)
        attrs = {k: snap(x, inside) for k, x in v.__dict__.items() if k != "_state"}
        cached = {k: snap(x, inside) for k, x in v._state.fields_cache.items()}
        return (type(v).__name__, sorted(attrs.items()), sorted(cached.items()))
    if isinstance(v, QuerySet):
        return ("QuerySet", [snap(x, _inside) for x in v])
    if isinstance(v, dict):
        return ("dict", [(k, snap(x, _inside)) for k, x in v.items()])
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, getattr(v, "_fields", None), [snap(x, _inside) for x in v])
    if isinstance(v, datetime.datetime):
        return ("datetime", v.isoformat(), repr(v.tzinfo))
    if isinstance(v, datetime.time):
        return ("time", v.isoformat(), repr(v.tzinfo))
    if isinstance(v, (decimal.Decimal, float)):
        return (type(v).__name__, repr(v))
    if isinstance(v, memoryview):
        return ("memoryview", bytes(v))
    return (type(v).__name__, v)


def outcome(fn: Any, *args: Any) -> Any:
    """The snapshot of fn(*args), or the exception it raised."""
    try:
        return snap(fn(*args))
    except Exception as e:  # both paths must raise the same thing
        return ("raised", type(e).__name__, str(e))
