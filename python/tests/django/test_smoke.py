import pytest
from parity.models import Author, Book
from molt_django_adapter import capture_events


@pytest.mark.parametrize("alias", __import__("conftest").ALIASES)
def test_smoke(alias):
    with capture_events() as ev:
        n = Book.objects.using(alias).offload().count()
        rows = list(Book.objects.using(alias).offload().select_related("author").order_by("id")[:3])
    print(ev)
    assert n == Book.objects.using(alias).count()
    assert [b.author.name for b in rows] == [b.author.name for b in Book.objects.using(alias).select_related("author").order_by("id")[:3]]
    assert all(e.offloaded for e in ev), ev
