"""/baseline/api/items (ORM) and /offload/api/items (molt_worker) give equal
JSON for the same query string, on a few hundred parameter combinations and
on whole cursor walks. Runs on whatever DATABASES says (SQLite by default,
PostgreSQL with MOLT_DEMO_PG_DSN) and USE_TZ on or off (MOLT_DEMO_USE_TZ)."""
import itertools
import json
import random
from urllib.parse import urlencode

from django.test import TransactionTestCase, override_settings

from catalog.management.commands.make_demo_data import generate
from catalog.models import Item

from .worker import Worker

QS = [None, "lamp", "LAMP", "café", "CAFÉ", "100%", "set_of", "_", "%", "o", "zzz-none", "über naïve", "'"]
LIMITS = [1, 2, 7, 50, 333, 1000]


class ItemsParity(TransactionTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        generate(items=4000, sellers=80, seed=11)
        cls.worker = Worker()
        cls.settings_override = override_settings(MOLT_DB={"SOCKET": cls.worker.socket,
                                                          "WORKER_BIN": cls.worker.argv[0]})
        cls.settings_override.enable()

    @classmethod
    def tearDownClass(cls):
        cls.settings_override.disable()
        cls.worker.stop()
        Item.objects.all().delete()
        super().tearDownClass()

    # TransactionTestCase would flush the tables after each test
    def _fixture_teardown(self):
        pass

    def get_both(self, params, path="/offload/api/items"):
        q = urlencode({k: v for k, v in params.items() if v is not None})
        a = self.client.get("/baseline/api/items?" + q)
        b = self.client.get(path + "?" + q)
        self.assertEqual(a.status_code, 200, a.content)
        self.assertEqual(b.status_code, 200, b.content)
        self.assertEqual(b["Content-Type"], "application/json")
        ja, jb = json.loads(a.content), json.loads(b.content)
        self.assertEqual(ja, jb, q)
        return ja

    def test_combinations(self):
        rng = random.Random(5)
        sellers = [None, 1, 2, 3, 40, 80, 999999]
        statuses = [None] + Item.STATUSES
        ids = list(Item.objects.order_by("id").values_list("id", flat=True))
        cursors = [None, None, ids[0], ids[len(ids) // 2], ids[-1], ids[-1] + 1000]
        combos = list(itertools.product(sellers, QS, statuses, LIMITS, cursors))
        rng.shuffle(combos)
        nonempty = 0
        for user_id, q, status, limit, cursor in combos[:300]:
            body = self.get_both(dict(user_id=user_id, q=q, status=status, limit=limit, cursor=cursor))
            nonempty += bool(body["items"])
        self.assertGreater(nonempty, 60)  # the sample is not all empty pages

    def test_cursor_walk(self):
        for params in [dict(limit=333), dict(limit=50, status="sold", q="o"), dict(limit=7, user_id=1)]:
            seen, cursor, pages = [], None, 0
            while True:
                body = self.get_both(dict(params, cursor=cursor))
                seen += [it["id"] for it in body["items"]]
                pages += 1
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            expect = Item.objects.filter(is_public=True)
            if "status" in params:
                expect = expect.filter(status=params["status"], title__icontains=params["q"])
            if "user_id" in params:
                expect = expect.filter(seller_id=params["user_id"])
            self.assertEqual(seen, list(expect.order_by("-id").values_list("id", flat=True)))
            self.assertGreater(pages, 2)

    def test_async_view_same_body(self):
        for params in [dict(limit=20), dict(limit=5, q="lamp", status="active")]:
            self.get_both(params, path="/offload/api/items-async")

    def test_value_shapes(self):
        body = self.get_both(dict(limit=1000))
        it = body["items"][0]
        self.assertEqual(list(it), ["ref", "title", "status", "amount", "created", "color",
                                    "seller_id", "seller_name", "id"])
        self.assertRegex(it["ref"], r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertTrue(all(isinstance(i["amount"], str) and i["amount"][-3] == "." for i in body["items"]))
        self.assertTrue(any("." in i["created"] for i in body["items"]))       # microseconds
        self.assertTrue(any("." not in i["created"] for i in body["items"]))   # whole seconds
        self.assertTrue(any(i["color"] is None for i in body["items"]))        # key missing in meta

    def test_bad_input_is_400_on_both(self):
        for q in ["limit=0", "limit=1001", "limit=x", "status=nope", "cursor=-1", "user_id=1e3"]:
            a = self.client.get("/baseline/api/items?" + q)
            b = self.client.get("/offload/api/items?" + q)
            self.assertEqual((a.status_code, b.status_code), (400, 400), q)
            self.assertEqual(json.loads(a.content), json.loads(b.content))
