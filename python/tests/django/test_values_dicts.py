"""values() offloaded (values_dicts.py): the rows arrive as the dicts
ValuesIterable makes, equal to the ORM's (values, types, key order), with
and without the C decoder; when Django has no converter left for the
selected columns they come whole (no results_iter(), no dict
comprehension), and when one is left (a JSON key transform) Django's own
path runs them."""

import pytest
from django.db import connections
from django.db.models import F
from django.db.models.functions import Lower

from molt_db_adapter import c_rows
from molt_django_adapter import capture_events, offloading
from molt_django_adapter.compiler import OffloadCompiler
from parity.compare import snap
from parity.models import Author

from conftest import ALIASES

SHAPES = {
    # (the QuerySet, whether its dicts come whole on this vendor)
    "all_fields": (lambda qs: qs.values(), {"postgresql", "sqlite"}),
    "some_fields": (lambda qs: qs.values("key", "profile", "rating", "joined", "active", "score", "born"),
                    {"postgresql", "sqlite"}),
    "expressions": (lambda qs: qs.values("id", low=Lower("email"), again=F("name")), {"postgresql", "sqlite"}),
    "json_key": (lambda qs: qs.values("id", "profile__tags"), set()),   # KeyTransform's converter stays
}


@pytest.mark.parametrize("decoder", ["c", "python"])
@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_values_dicts_are_the_orms(alias, shape, decoder, monkeypatch):
    if decoder == "python":
        monkeypatch.setattr(c_rows, "decoder", None)
    elif c_rows.decoder is None:
        pytest.skip("molt_db_adapter._rows is not built")
    make, whole_on = SHAPES[shape]
    qs = make(Author.objects.using(alias).order_by("id"))
    with offloading(False):
        expected = list(qs.all())
    calls = []
    orm_results_iter = OffloadCompiler.results_iter

    def counting(self, *args, **kwargs):
        calls.append(1)
        return orm_results_iter(self, *args, **kwargs)

    monkeypatch.setattr(OffloadCompiler, "results_iter", counting)
    with capture_events() as events, offloading(True):
        got = list(qs.all())
    assert len(expected) > 3
    assert snap(got) == snap(expected)
    assert [list(d) for d in got] == [list(d) for d in expected]
    assert events and all(e.offloaded for e in events), events
    assert (calls == []) == (connections[alias].vendor in whole_on), calls


def test_values_of_another_compiler_are_djangos():
    """A QuerySet whose compiler is not the adapter's still gets Django's
    own ValuesIterable (the replaced __iter__ hands it back)."""
    from django.db.models.query import ValuesIterable

    from molt_django_adapter import values_dicts

    assert ValuesIterable.__iter__ is values_dicts._values_iter
    seen = []

    class Plain:   # what ValuesIterable needs of a compiler, without molt_values_dicts
        def results_iter(self, chunked_fetch, chunk_size):
            seen.append((chunked_fetch, chunk_size))
            return iter([(1, "a"), (2, "b")])

    class Query:
        selected = None
        extra_select = {}
        values_select = ("id", "name")
        annotation_select = {}

        def get_compiler(self, using):
            return Plain()

    class QS:
        query = Query()
        db = "default"

    assert list(ValuesIterable(QS(), chunked_fetch=True, chunk_size=7)) == [{"id": 1, "name": "a"},
                                                                          {"id": 2, "name": "b"}]
    assert seen == [(True, 7)]


@pytest.mark.parametrize("alias", ALIASES)
def test_making_the_iterator_runs_nothing(alias):
    """Django's _async_generator makes ValuesIterable's iterator in the
    event loop and advances it in a thread: making it must not run the
    query; advancing it gives the ORM's dicts."""
    from django.db.models.query import ValuesIterable

    qs = Author.objects.using(alias).order_by("id").values("id", "name")
    with capture_events() as events, offloading(True):
        rows = iter(ValuesIterable(qs))
        assert list(events) == []
        got = [next(rows), *rows]
    assert events and all(e.offloaded for e in events), events
    with offloading(False):
        assert got == list(qs.all())
