"""Django's SQLite compilers, offloading through the worker."""

from django.db.models.sql import compiler as _django

from molt_django_adapter.compiler import compilers_for

globals().update(compilers_for(_django))
