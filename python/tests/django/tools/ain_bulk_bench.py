"""ain_bulk() of 70,000 ids on the SQLite test database (71 statements of
999 parameters): Django's own (in its thread) against offloaded (replayed
on the loop, then in Django's thread after replay.MAX_ROUNDS), plus the
sync in_bulk() both ways and the offloaded call with other round limits:

    bash scripts/with_pg.sh .venv/bin/python python/tests/django/tools/ain_bulk_bench.py

Prints seconds per call and the events the adapter recorded."""

import asyncio
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "..", "..")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.db.models import QuerySet  # noqa: E402

from molt_django_adapter import capture_events, close_clients, replay  # noqa: E402
from parity.data import create_schema, fill  # noqa: E402
from parity.models import Book  # noqa: E402

IDS = list(range(1, 70001))


async def timed(qs):
    with capture_events() as events:
        start = time.perf_counter()
        value = await qs.ain_bulk(IDS)
        seconds = time.perf_counter() - start
    return value, seconds, events


def main():
    create_schema("default")
    fill("default")
    for label, qs in (("ORM ain_bulk", QuerySet(model=Book, using="default")),
                      ("offloaded ain_bulk", Book.objects.offload())):
        value, seconds, events = asyncio.run(timed(qs))
        print(f"{label:28} {seconds:.3f} s  {len(value)} rows  {len(events)} events")
    for label, qs in (("ORM in_bulk (sync)", QuerySet(model=Book, using="default")),
                      ("offloaded in_bulk (sync)", Book.objects.offload())):
        start = time.perf_counter()
        qs.in_bulk(IDS)
        print(f"{label:28} {time.perf_counter() - start:.3f} s")
    default = replay.MAX_ROUNDS
    for rounds in (2, default, 64):
        replay.MAX_ROUNDS = rounds
        _, seconds, events = asyncio.run(timed(Book.objects.offload()))
        print(f"offloaded, MAX_ROUNDS={rounds:<3}     {seconds:.3f} s  {len(events)} events")
    replay.MAX_ROUNDS = default
    close_clients()


if __name__ == "__main__":
    main()
