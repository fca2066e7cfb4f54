import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "python"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
