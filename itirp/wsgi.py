"""WSGI entry point (itirp.serve runs it under granian; gunicorn itirp.wsgi:application works too)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
application = get_wsgi_application()
