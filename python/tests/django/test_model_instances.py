"""Model instances of offloaded rows (model_instances.py): built in C
without Model.__init__, and instance by instance the ORM's: the same class,
the same __dict__ (keys in the same order, every value's type and value),
the same _state.__dict__ (adding, db, fields_cache as the foreign key's
setter leaves it), the same deferred fields. A model whose construction
is not Django's own (its own __init__ or from_db, a pre_init/post_init
receiver) and a QuerySet Django's loop does more for (select_related,
annotations) keep Django's from_db; a related manager's QuerySet gets its
known objects set as Django sets them."""

import asyncio

import pytest
from django.db.models import Count, F, Model
from django.db.models.functions import Lower
from django.db.models.signals import post_init, pre_init

from molt_db_adapter import c_rows
from molt_django_adapter import capture_events, offloading
from molt_django_adapter import model_instances
from parity.compare import snap
from parity.models import Author, Book, Publisher

from conftest import ALIASES


class AuthorWithInit(Author):
    """A proxy (no table of its own) whose __init__ is its own."""

    class Meta:
        proxy = True
        app_label = "parity"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.made_by_init = True


class BookFromDb(Book):
    class Meta:
        proxy = True
        app_label = "parity"

    @classmethod
    def from_db(cls, db, field_names, values):
        obj = super().from_db(db, field_names, values)
        obj.made_by_from_db = True
        return obj


def raw_state(objs):
    """What each instance holds, read before anything touches it (snap()
    reads _state.fields_cache, which makes it)."""
    return [(type(o), [(k, snap(v)) for k, v in o.__dict__.items() if k != "_state"],
             list(vars(o._state).items()), o.get_deferred_fields()) for o in objs]


@pytest.fixture
def from_db_calls(monkeypatch):
    """Model.from_db calls (Django's path), counted."""
    calls = []
    django_from_db = Model.from_db.__func__

    def counting(cls, db, field_names, values):
        calls.append(cls)
        return django_from_db(cls, db, field_names, values)

    monkeypatch.setattr(Model, "from_db", classmethod(counting))
    return calls


SHAPES = {
    "all_fields_nullable_fk": lambda a: Author.objects.using(a).order_by("id"),
    "fk_binary_duration": lambda a: Book.objects.using(a).order_by("id"),
    "only": lambda a: Author.objects.using(a).order_by("id").only("name", "publisher", "rating"),
    "defer": lambda a: Book.objects.using(a).order_by("-id").defer("title", "cover"),
    "filtered_sliced": lambda a: Book.objects.using(a).filter(pages__gt=0).order_by("pages", "id")[1:6],
    "publishers": lambda a: Publisher.objects.using(a).order_by("name"),
    # distinct, ordered by an expression not selected: the rows carry an extra column, cut before the instances
    "ordered_by_expression": lambda a: Author.objects.using(a).distinct().order_by(Lower("email"), "id"),
    # a related manager's QuerySet: each book gets its known author, as Django's loop sets it
    "related_manager": lambda a: Author.objects.using(a).annotate(n=Count("books")).filter(n__gt=1)
                                       .order_by("id").first().books.order_by("id"),
}


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("how", ["list", "iterator", "async"])
def test_instances_are_the_orms(alias, shape, how, from_db_calls):
    if c_rows.decoder is None:
        pytest.skip("molt_db_adapter._rows is not built")
    qs = SHAPES[shape](alias)
    with offloading(False):
        expected = raw_state(list(qs.all()))
    assert from_db_calls and len(expected) >= 3
    from_db_calls.clear()
    with capture_events() as events, offloading(True):
        if how == "list":
            got = list(qs.all())
        elif how == "iterator":
            got = list(qs.all().iterator(chunk_size=3))
        else:
            async def collect():
                return [o async for o in qs.all()]
            got = asyncio.run(collect())
    assert raw_state(got) == expected
    assert events and all(e.offloaded for e in events), events
    assert from_db_calls == []   # built in C


@pytest.mark.parametrize("alias", ALIASES)
def test_a_foreign_key_state_as_djangos(alias):
    """A null foreign key leaves _state without fields_cache, a set one
    with an empty one (ForeignKeyDeferredAttribute.__set__ asked)."""
    qs = Author.objects.using(alias).order_by("id")
    with offloading(True):
        got = list(qs)
    states = {o.publisher_id is None: list(vars(o._state)) for o in got}
    assert states == {True: ["adding", "db"], False: ["fields_cache", "adding", "db"]}
    assert all(o._state.db == alias and o._state.adding is False for o in got)


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("case", ["own_init", "own_from_db", "post_init", "pre_init_any_sender", "select_related",
                                  "annotate", "no_c_decoder"])
def test_djangos_from_db_where_it_does_more(alias, case, from_db_calls, monkeypatch):
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    def any_sender(sender, **kwargs):
        seen.append(sender)

    qs = Author.objects.using(alias).order_by("id")
    if case == "own_init":
        qs = AuthorWithInit.objects.using(alias).order_by("id")
    elif case == "own_from_db":
        qs = BookFromDb.objects.using(alias).order_by("id")
    elif case == "post_init":
        post_init.connect(receiver, sender=Author)
    elif case == "pre_init_any_sender":
        pre_init.connect(any_sender)   # no sender: every model's
    elif case == "select_related":
        qs = Book.objects.using(alias).select_related("author").order_by("id")
    elif case == "annotate":
        qs = qs.annotate(n_books=Count("books"), twice=F("rating") * 2)
    elif case == "no_c_decoder":
        monkeypatch.setattr(c_rows, "decoder", None)
    try:
        with offloading(False):
            expected = raw_state(list(qs.all()))
            seen_orm = list(seen)
            expected_snap = snap(list(qs.all()))
        from_db_calls.clear()
        seen.clear()
        with capture_events() as events, offloading(True):
            got = list(qs.all())
            got_state = raw_state(got)
    finally:
        post_init.disconnect(receiver, sender=Author)
        pre_init.disconnect(any_sender)
    assert got_state == expected
    assert snap(got) == expected_snap
    assert events and all(e.offloaded for e in events), events
    assert len(from_db_calls) >= len(got) > 1   # Django's from_db, each
    assert seen == seen_orm
    if case == "own_init":
        assert all(o.made_by_init for o in got)
    if case == "own_from_db":
        assert all(o.made_by_from_db for o in got)
    if case == "post_init":
        assert seen == [o.pk for o in got]
    if case == "pre_init_any_sender":
        assert seen == [Author] * len(got)


def test_plain_models_and_others():
    def plain(model):
        return model_instances._plain_model(model, [k.__dict__ for k in model.__mro__])

    assert plain(Author) and plain(Book) and plain(Publisher)
    assert not plain(AuthorWithInit) and not plain(BookFromDb)


def test_builder_refuses_a_row_of_another_width():
    if c_rows.decoder is None:
        pytest.skip("molt_db_adapter._rows is not built")
    build = model_instances.instance_builder(Publisher, ["id", "name", "country"], "default")
    assert build is not None
    p = build((7, "n", "c"))
    assert (type(p), p.id, p.name, p.country, p._state.db, p._state.adding) == (Publisher, 7, "n", "c", "default", False)
    for bad in [(1, "n"), (1, "n", "c", "d"), 5]:
        with pytest.raises((ValueError, TypeError)):
            build(bad)


@pytest.mark.parametrize("alias", ALIASES)
def test_rows_of_a_fallback_get_djangos_from_db(alias, from_db_calls):
    """Inside atomic() the read goes through the ORM (IN_ATOMIC 'fallback'):
    its rows are the ORM's, and so are the instances."""
    from django.db import transaction

    qs = Author.objects.using(alias).order_by("id")
    with offloading(False):
        expected = raw_state(list(qs.all()))
    from_db_calls.clear()
    with capture_events() as events, offloading(True), transaction.atomic(using=alias):
        got = list(qs.all())
    assert raw_state(got) == expected
    assert events and not any(e.offloaded for e in events), events
    assert len(from_db_calls) == len(got)
