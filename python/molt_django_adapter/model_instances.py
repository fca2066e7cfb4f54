"""Model instances of offloaded rows, built in C.

Django's ModelIterable makes each instance with Model.from_db, that is
Model.__init__: two signal sends and a setattr per field, in Python. For a
model whose construction is Django's own (no __init__, __new__,
__setattr__ or from_db of its own, no pre_init or post_init receiver,
every field's class attribute Django's DeferredAttribute or
ForeignKeyDeferredAttribute), the C InstanceBuilder (python/ext/rows/
model_rows.c) gives the same instance: the same __dict__ in the same
order, the same _state (adding False, db, fields_cache as the foreign
key's __set__ leaves it), deferred fields left out as from_db leaves them.

use_compiler_instances() gives ModelIterable an __iter__ that takes that
path for a plain QuerySet (no select_related(), annotations or extra()
columns, so Django's loop would only call from_db, and set a related
manager's known objects, which it then sets as Django does) whose rows
the worker gave. A QuerySet that is not to be
offloaded runs Django's own ModelIterable; rows of one that fell back to
the ORM get Django's from_db.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Iterator, Optional, Sequence

from django.db.models import Model
from django.db.models.base import DEFERRED, ModelState
from django.db.models.fields.mixins import FieldCacheMixin
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query import ModelIterable, get_related_populators  # type: ignore[attr-defined]
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init

from molt_db_adapter import c_rows

from .execution import offload_wanted

_django_iter = ModelIterable.__iter__


def _class_attr(dicts: Sequence[Any], name: str) -> Any:
    """The class attribute setattr(instance, name, v) meets (None: none),
    from the __dict__s of the model's MRO."""
    for d in dicts:
        if name in d:
            return d[name]
    return None


def _plain_model(model: type, dicts: Sequence[Any]) -> bool:
    """from_db() is Model.__init__'s plain loop: nothing in the MRO but
    Model (and object) defines what it calls, no init signal receivers."""
    if type(model).__call__ is not type.__call__ or getattr(model._meta, "abstract", True):   # type: ignore[attr-defined]
        return False
    for klass, d in zip(model.__mro__, dicts):
        if klass is not Model and klass is not object and (
                "__init__" in d or "__new__" in d or "__setattr__" in d or "from_db" in d or "_state" in d):
            return False
    return not (pre_init.has_listeners(model) or post_init.has_listeners(model))


def instance_builder(model: type, init_list: Sequence[str], db: str) -> Optional[Callable[[Any], Any]]:
    """A callable giving model.from_db(db, init_list, values) for one row's
    values, built in C; None when the model's construction is not Django's
    own or there is no C decoder."""
    decoder = c_rows.decoder
    dicts = [klass.__dict__ for klass in model.__mro__]
    if decoder is None or not _plain_model(model, dicts):
        return None
    fields = model._meta.concrete_fields   # type: ignore[attr-defined]
    if len(init_list) != len(fields):
        # from_db: the values go, in order, to the concrete fields named in init_list
        fields = [f for f in fields if f.attname in init_list]
        if len(fields) != len(init_list):
            return None
    names, foreign_keys = [], []
    for f in fields:
        attr = _class_attr(dicts, f.attname)
        if type(attr) is ForeignKeyDeferredAttribute:
            if attr.field.attname != f.attname or type(attr.field).is_cached is not FieldCacheMixin.is_cached:
                return None
            foreign_keys.append(True)
        elif attr is None or type(attr) is DeferredAttribute:
            foreign_keys.append(False)
        else:
            return None
        names.append(f.attname)
    builder: Callable[[Any], Any] = decoder.InstanceBuilder(model, tuple(names), tuple(foreign_keys),
                                                            ModelState, db, DEFERRED)
    return builder


def _plain_queryset(queryset: Any) -> bool:
    """Django's ModelIterable loop would only call from_db on its rows
    (and set a related manager's known objects)."""
    query = queryset.query
    return not (query.select_related or query.annotation_select or query.extra_select)


def _known_related_objects(queryset: Any) -> list[tuple[Any, Any, Any]]:
    """(field, objects by key, key getter) as ModelIterable makes them: a
    related manager's QuerySet (author.books.all()) knows its owner."""
    return [
        (field, related_objs, operator.attrgetter(*[
            field.attname if from_field == "self" else queryset.model._meta.get_field(from_field).attname
            for from_field in field.from_fields]))
        for field, related_objs in queryset._known_related_objects.items()
    ]


def _with_known(objs: Iterator[Any], known: list[tuple[Any, Any, Any]]) -> Iterator[Any]:
    """Each instance with its known related objects set, as ModelIterable
    sets them."""
    for obj in objs:
        for field, rel_objs, rel_getter in known:
            if field.is_cached(obj):
                continue
            try:
                rel_obj = rel_objs[rel_getter(obj)]
            except KeyError:
                pass
            else:
                setattr(obj, field.name, rel_obj)
        yield obj


def _models_iter(self: ModelIterable[Any]) -> Iterator[Any]:
    queryset = self.queryset
    db = queryset.db
    compiler = queryset.query.get_compiler(using=db)
    if (not hasattr(compiler, "molt_offloaded") or not _plain_queryset(queryset)
            or not offload_wanted(queryset.query, db)):
        yield from _django_iter(self)
        return
    results = compiler.execute_sql(chunked_fetch=self.chunked_fetch, chunk_size=self.chunk_size)
    select, klass_info = compiler.select, compiler.klass_info
    if compiler.annotation_col_map or get_related_populators(klass_info, select, db):
        # _plain_queryset rules these out; should Django ever differ, its
        # own loop runs (the statement a second time)
        yield from _django_iter(self)
        return
    model_cls = klass_info["model"]
    select_fields = klass_info["select_fields"]
    start, end = select_fields[0], select_fields[-1] + 1
    init_list = [f[0].target.attname for f in select[start:end]]
    rows = compiler.results_iter(results)
    build = instance_builder(model_cls, init_list, db) if compiler.molt_offloaded else None
    objs: Iterator[Any]
    if build is None:
        objs = (model_cls.from_db(db, init_list, row[start:end]) for row in rows)
    elif start == 0 and end == compiler.col_count:
        objs = map(build, rows)
    else:
        objs = (build(row[start:end]) for row in rows)
    known = _known_related_objects(queryset)
    yield from _with_known(objs, known) if known else objs


def use_compiler_instances() -> None:
    ModelIterable.__iter__ = _models_iter   # type: ignore[method-assign]
