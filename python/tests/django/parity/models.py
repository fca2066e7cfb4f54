"""Models with the field types whose values must come back exactly as the
ORM gives them: FK, M2M, decimal, datetime, date, time, duration, UUID,
JSON, boolean, float, binary, nullable text."""

from django.db import models

from molt_django_adapter import OffloadManager


class Publisher(models.Model):
    name = models.CharField(max_length=100, unique=True)
    country = models.CharField(max_length=2)

    objects = OffloadManager()


class Author(models.Model):
    name = models.CharField(max_length=100)
    email = models.CharField(max_length=200, unique=True)
    nick = models.CharField(max_length=50, null=True)
    active = models.BooleanField(default=True)
    joined = models.DateTimeField()
    born = models.DateField(null=True)
    rating = models.DecimalField(max_digits=6, decimal_places=2)
    key = models.UUIDField()
    profile = models.JSONField(default=dict)
    score = models.FloatField(null=True)
    publisher = models.ForeignKey(Publisher, null=True, on_delete=models.SET_NULL, related_name="authors")

    objects = OffloadManager()


class Tag(models.Model):
    label = models.CharField(max_length=30)

    objects = OffloadManager()


class Book(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    published = models.DateTimeField()
    pages = models.IntegerField()
    wake = models.TimeField(null=True)
    length = models.DurationField(null=True)
    cover = models.BinaryField(null=True)
    in_print = models.BooleanField()
    tags = models.ManyToManyField(Tag, related_name="books")

    objects = OffloadManager()


class Missing(models.Model):
    """A table that is never created: reads and writes of it are errors."""
    name = models.CharField(max_length=10)

    objects = OffloadManager()

    class Meta:
        managed = False
        db_table = "parity_missing_table"


class Post(models.Model):
    """The table of the connection-settings tests (row-level security,
    search_path, test databases); created by those tests, not by data.py."""

    title = models.CharField(max_length=50)
    status = models.CharField(max_length=10, default="published")
    objects = OffloadManager()


class Spelling(models.Model):
    """Every field type whose SQLite value Django converts, for rows written
    with raw SQL in spellings Django itself would not write
    (test_sqlite_values.py creates and fills it)."""

    flag = models.BooleanField(null=True)
    at = models.DateTimeField(null=True)
    day = models.DateField(null=True)
    clock = models.TimeField(null=True)
    amount = models.DecimalField(max_digits=12, decimal_places=3, null=True)
    key = models.UUIDField(null=True)
    doc = models.JSONField(null=True)
    span = models.DurationField(null=True)
    label = models.CharField(max_length=20, null=True)
    ratio = models.FloatField(null=True)
    objects = OffloadManager()
