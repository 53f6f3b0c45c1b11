"""Settings of the example Django project (no database, no apps: pages only)."""

import os
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parents[2]  # examples/web, where shop.py is
sys.path.insert(0, str(WEB))

from shop import SECRET, web_fields  # noqa: E402

DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
SECRET_KEY = SECRET
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
ROOT_URLCONF = "shopsite.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
MIDDLEWARE = [
    "shopsite.views.worker_pid",
    "django.middleware.security.SecurityMiddleware",
    "dni_engine.web.django.DNIMiddleware",  # above GZipMiddleware: it sees the page last
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.common.CommonMiddleware",
]
WSGI_APPLICATION = "shopsite.wsgi.application"
ASGI_APPLICATION = "shopsite.asgi.application"

DNI_ENGINE = "shop:ENGINE"  # an Engine, or the dotted path of one
DNI_WEB = web_fields()  # {"secret": ..., "debug_header": ...}: the WebConfig fields
