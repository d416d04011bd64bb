"""itirp.heap: the web and worker processes' long-lived objects out of the collector's full passes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.worker import ROOT, worker_env

# Run in a process of its own: what a process loads, and its collector's state, are what is looked at.
WEB = """
import gc, json
import itirp.wsgi
from orders.apis import OrdersApi
from risk import checks
frozen = gc.get_freeze_count()
listed = {id(o) for o in gc.get_objects()}  # the permanent generation is not listed
print(json.dumps({"frozen": frozen, "view_frozen": gc.is_tracked(OrdersApi) and id(OrdersApi) not in listed,
                  "checks_frozen": id(checks.__dict__) not in listed}))
"""

WORKER = """
import gc, json
import django
from celery import signals
import itirp.celery
django.setup()
itirp.celery.app.loader.import_default_modules()  # what `celery worker` loads before its pool starts
before = gc.get_freeze_count()
signals.worker_process_init.send(sender=None)
child = gc.get_freeze_count()
gc.unfreeze()
signals.worker_ready.send(sender=None)
print(json.dumps({"before": before, "child": child, "ready": gc.get_freeze_count()}))
"""


def _run(code: str, **extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=worker_env(**extra), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_wsgi_when_loaded_then_the_application_its_views_and_the_checks_frozen():
    seen = _run(WEB)
    # Django, DRF and the apps: well over 50,000 objects (about 180,000 measured), the view among them
    assert seen["frozen"] > 50_000
    assert seen["view_frozen"] and seen["checks_frozen"]


@pytest.mark.django_db
def test_wsgi_when_disabled_by_the_environment_then_nothing_frozen():
    seen = _run(WEB, ITIRP_GC_FREEZE="0")
    assert seen == {"frozen": 0, "view_frozen": False, "checks_frozen": False}


@pytest.mark.django_db
def test_worker_when_a_pool_process_starts_or_the_worker_is_ready_then_what_is_loaded_frozen():
    seen = _run(WORKER)
    assert seen["before"] == 0  # importing the Celery app freezes nothing: its signals do
    assert seen["child"] > 50_000 and seen["ready"] > 50_000
