"""PARAM_BINDING "client" vs "server" on a few QuerySets, offloaded to a
worker on PostgreSQL (run under scripts/with_pg.sh):

    bash scripts/with_pg.sh .venv/bin/python python/tests/django/tools/binding_bench.py

Each round runs every QuerySet N times with varying parameters, the two
modes alternating round by round; prints the median µs per query per mode
and the ratio server/client."""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "..", "..")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db.models import Count, Sum  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from molt_django_adapter import close_clients, offloading  # noqa: E402
from parity.data import create_schema, fill  # noqa: E402
from parity.models import Author, Book  # noqa: E402

N, ROUNDS = 200, int(os.environ.get("ROUNDS", "5"))
QUERIES = {
    "get by pk": lambda i: Book.objects.using("pg").get(pk=1 + i % 40),
    "filter+values 10 rows": lambda i: list(Book.objects.using("pg").filter(pages__gt=i % 300).values("id", "title", "price")[:10]),
    "join+group by": lambda i: list(Author.objects.using("pg").filter(books__price__gt=i % 50).annotate(n=Count("books"), s=Sum("books__price")).values("id", "n", "s")),
}


def main() -> None:
    create_schema("pg")
    fill("pg")
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(ROUNDS):
        for mode in ("client", "server"):
            with override_settings(MOLT_DB={**settings.MOLT_DB, "PARAM_BINDING": mode}), offloading():
                for name, q in QUERIES.items():
                    q(0)   # worker started, statement seen once
                    t0 = time.perf_counter()
                    for i in range(N):
                        q(i)
                    times.setdefault((name, mode), []).append((time.perf_counter() - t0) / N * 1e6)
    close_clients()
    print(f"{'query':24} {'client µs':>10} {'server µs':>10} {'server/client':>14}")
    for name in QUERIES:
        c = statistics.median(times[(name, "client")])
        s = statistics.median(times[(name, "server")])
        print(f"{name:24} {c:10.0f} {s:10.0f} {s / c:14.2f}")


if __name__ == "__main__":
    main()
