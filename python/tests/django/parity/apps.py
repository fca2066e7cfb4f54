from django.apps import AppConfig


class ParityConfig(AppConfig):
    name = "parity"
    default_auto_field = "django.db.models.BigAutoField"
