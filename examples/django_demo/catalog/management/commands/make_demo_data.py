"""manage.py make_demo_data [--items N] [--sellers N] [--seed S]

Fills the catalog with reproducible, realistic-looking data: a few sellers
own most items (a skewed pick), titles mix words, accents and the odd
'%' or '_', prices spread over four orders of magnitude, timestamps over two
years with microseconds (some whole seconds), ~10% private items, JSON meta
with a color (sometimes missing), a size and tags. Replaces what is there.
"""
import datetime
import random
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.management.color import no_style
from django.db import connection, transaction

from catalog.models import Item, Seller

WORDS = ("lamp chair table vintage oak steel blue rare mint boxed handmade café crème "
         "über naïve 100% set_of_2 bike guitar camera lens watch desk shelf rug vase").split()
COLORS = ["red", "green", "blue", "black", "white", "walnut", "gold"]
STATUS_WEIGHTS = [("draft", 5), ("active", 60), ("reserved", 5), ("sold", 25), ("archived", 5)]
EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def generate(items: int, sellers: int, seed: int, batch: int = 5000) -> None:
    rng = random.Random(seed)
    statuses = [s for s, w in STATUS_WEIGHTS for _ in range(w)]
    top = max(1, sellers // 50)  # half of the items belong to 2% of the sellers

    def when(span_s: int) -> datetime.datetime:
        micro = 0 if rng.random() < 0.2 else rng.randrange(1_000_000)
        t = EPOCH + datetime.timedelta(seconds=rng.randrange(span_s), microseconds=micro)
        return t if settings.USE_TZ else t.replace(tzinfo=None)  # naive: TIME_ZONE is UTC

    with transaction.atomic():
        Item.objects.all().delete()
        Seller.objects.all().delete()
        Seller.objects.bulk_create(
            [Seller(id=i, name=f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} #{i}",
                    email=f"seller{i}@example.com", joined_at=when(365 * 86400)) for i in range(1, sellers + 1)],
            batch_size=batch)
        for start in range(1, items + 1, batch):
            rows = []
            for i in range(start, min(items, start + batch - 1) + 1):
                meta = {"size": rng.randrange(1, 50), "tags": rng.sample(WORDS, rng.randrange(0, 3))}
                if rng.random() < 0.9:
                    meta["color"] = rng.choice(COLORS)
                rows.append(Item(
                    id=i,
                    uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
                    seller_id=rng.randrange(1, top + 1) if rng.random() < 0.5 else rng.randrange(1, sellers + 1),
                    title=" ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 6))),
                    status=rng.choice(statuses),
                    price=Decimal(rng.randrange(50, 10_000_000)) / 100,
                    created_at=when(2 * 365 * 86400),
                    is_public=rng.random() < 0.9,
                    meta=meta,
                ))
            Item.objects.bulk_create(rows, batch_size=batch)
        with connection.cursor() as cur:  # explicit ids: move the sequences past them
            for sql in connection.ops.sequence_reset_sql(no_style(), [Seller, Item]):
                cur.execute(sql)


class Command(BaseCommand):
    help = "Replace the catalog with generated data (default 120000 items)."

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=120_000)
        parser.add_argument("--sellers", type=int, default=2_000)
        parser.add_argument("--seed", type=int, default=8)

    def handle(self, *, items, sellers, seed, **_):
        generate(items, sellers, seed)
        self.stdout.write(f"catalog: {Seller.objects.count()} sellers, {Item.objects.count()} items")
