"""The tests a user writes: rows made in the test, read back (offloaded
where the worker can see the test database), in TestCase and
TransactionTestCase."""
from django.test import TestCase, TransactionTestCase

from molt_django_adapter import capture_events

from .models import Item


class ItemTests(TestCase):
    def test_created_rows_are_read(self):
        Item.objects.create(sku="a", qty=1)
        Item.objects.create(sku="b", qty=2)
        self.assertEqual(list(Item.objects.order_by("sku").values_list("sku", "qty")),
                         [("a", 1), ("b", 2)])
        self.assertEqual(Item.objects.count(), 2)


class ItemCommittedTests(TransactionTestCase):
    def test_committed_rows_are_read_from_the_test_database(self):
        Item.objects.create(sku="c", qty=3)
        with capture_events() as events:
            got = list(Item.objects.values_list("sku", "qty"))
        self.assertEqual(got, [("c", 3)])
        # printed for the pytest wrapper: offloaded or not, and why
        print("EVENTS", [(e.offloaded, e.reason) for e in events])
