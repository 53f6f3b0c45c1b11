"""ASGI entry point: ``uvicorn --app-dir examples/web/django_site shopsite.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")
application = get_asgi_application()
