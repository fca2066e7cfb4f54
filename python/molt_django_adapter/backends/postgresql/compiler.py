"""Django's PostgreSQL compilers, offloading through the worker."""

from django.db.backends.postgresql import compiler as _django  # type: ignore[attr-defined]  # not in django-stubs

from molt_django_adapter.compiler import compilers_for

globals().update(compilers_for(_django))
