"""WSGI entry point (gunicorn itirp.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
application = get_wsgi_application()
