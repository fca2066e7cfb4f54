"""The rows every parity test reads: made the same way on each database,
committed before any worker reads them. Values chosen for edges: NULLs,
%, _ and quotes in text, non-ASCII, DST changes and midnight in
Europe/Paris, decimals with trailing zeros, JSON with nesting and nulls."""

import datetime
import decimal
import uuid

from django.db import connections

from .models import Author, Book, Missing, Publisher, Tag

UTC = datetime.timezone.utc
MODELS = [Publisher, Author, Tag, Book]


def create_schema(alias: str) -> None:
    conn = connections[alias]
    with conn.schema_editor() as editor:
        for model in reversed(MODELS):
            for through in [f.remote_field.through for f in model._meta.local_many_to_many]:
                editor.execute(f"DROP TABLE IF EXISTS {conn.ops.quote_name(through._meta.db_table)}")
            editor.execute(f"DROP TABLE IF EXISTS {conn.ops.quote_name(model._meta.db_table)}")
        editor.execute(f"DROP TABLE IF EXISTS {Missing._meta.db_table}")
        for model in MODELS:
            editor.create_model(model)


def fill(alias: str) -> None:
    pubs = [Publisher.objects.using(alias).create(name=n, country=c)
            for n, c in [("Acme", "US"), ("Édition_Ω", "FR"), ("100% Books", "DE")]]
    tags = [Tag.objects.using(alias).create(label=t) for t in ["sf", "crime", "poetry", "kids", "Ünicode"]]
    base = datetime.datetime(2024, 3, 30, 22, 30, 0, 123456, tzinfo=UTC)   # DST starts 2024-03-31 in Paris
    authors = []
    for i in range(12):
        authors.append(Author.objects.using(alias).create(
            name=["Ann", "bob", "Carl O'Neil", "dana_x", "Eve%", "Frank", "Gül", "hank",
                  "Ivy", "Jon Snow", "kim", "Lee"][i],
            email=f"user{i}@{'austin.edu' if i % 3 == 0 else 'example.com'}",
            nick=None if i % 4 == 0 else f"n{i}",
            active=i % 5 != 0,
            joined=base + datetime.timedelta(hours=7 * i, minutes=i),
            born=None if i % 6 == 5 else datetime.date(1970 + 3 * i, 1 + i % 12, 1 + 2 * i),
            rating=decimal.Decimal(f"{i * 1.25:.2f}") - decimal.Decimal("3.00"),
            key=uuid.UUID(int=0x1234_5678_9ABC_DEF0 * (i + 1)),
            profile={"level": i % 3, "tags": ["a", "b"][: i % 3], "city": None if i % 2 else "Paris",
                     "nested": {"x": i}},
            score=None if i == 7 else i / 3,
            publisher=None if i % 5 == 4 else pubs[i % 3],
        ))
    for j in range(40):
        b = Book.objects.using(alias).create(
            author=authors[j % 11],
            title=f"Book {j:02d}" + ("" if j % 7 else " – the sequel"),
            price=decimal.Decimal(f"{(j * 37) % 100}.{(j * 13) % 100:02d}"),
            published=base + datetime.timedelta(days=11 * j, hours=j),
            pages=50 + (j * 29) % 400,
            wake=None if j % 9 == 0 else datetime.time(j % 24, (j * 7) % 60, j % 60, 1000 * j),
            length=None if j % 8 == 0 else datetime.timedelta(hours=j, seconds=j * 3),
            cover=None if j % 3 else bytes([j, 0, 255 - j]),
            in_print=j % 4 != 0,
        )
        b.tags.set(tags[j % 5: j % 5 + 1 + j % 3])
