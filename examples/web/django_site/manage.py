#!/usr/bin/env python
"""The example site as a Django project: ``python examples/web/django_site/manage.py runserver``.

On Redis with two workers::

    DNI_REDIS_URL=redis://127.0.0.1:6379/0 DNI_SECRET=... \\
        gunicorn -w 2 -b 127.0.0.1:8000 --chdir examples/web/django_site shopsite.wsgi

See ``../shop.py`` for the settings.
"""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
