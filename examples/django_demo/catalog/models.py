import uuid

from django.db import models


class Seller(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)
    joined_at = models.DateTimeField()


class Item(models.Model):
    STATUSES = ["draft", "active", "reserved", "sold", "archived"]

    uuid = models.UUIDField(default=uuid.uuid4, unique=True)
    seller = models.ForeignKey(Seller, on_delete=models.CASCADE, related_name="items")
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=[(s, s) for s in STATUSES])
    price = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField()
    is_public = models.BooleanField(default=True)
    meta = models.JSONField(default=dict)  # {"color": str, "size": int, "tags": [str]}

    class Meta:
        indexes = [models.Index(fields=["seller", "-id"]), models.Index(fields=["status"])]
