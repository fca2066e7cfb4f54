from django.db import models


class Item(models.Model):
    sku = models.CharField(max_length=20, unique=True)
    qty = models.IntegerField()
