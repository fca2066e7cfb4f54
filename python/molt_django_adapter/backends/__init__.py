"""Database backends: Django's, with the SQL compilers of
molt_django_adapter.compiler (ENGINE molt_django_adapter.backends.postgresql
or .sqlite3)."""
