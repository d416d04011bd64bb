"""WSGI entry point (itirp.serve runs it under granian; gunicorn itirp.wsgi:application works too)."""

import os

from django.core.wsgi import get_wsgi_application

from itirp import heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
application = get_wsgi_application()
# The application loaded with its URL patterns, the process's long-lived objects leave the collector's full
# passes (itirp.heap: 130-220 ms each with every request thread stopped, measured under load).
heap.load_urls()
heap.freeze_loaded()
# A collector pass long enough to hold up every request is counted and logged (core.pauses, which needs the
# settings loaded).
heap.watch_collector()
