"""A server process's long-lived objects kept out of the cyclic garbage collector's passes (issue 19).

Once Django, DRF, the apps' modules, models, URL patterns and tasks are loaded, a web process holds ~180,000
objects the collector tracks, and they live as long as the process. CPython's full (oldest-generation)
collection walks every one of them while holding the GIL: measured in the web process under POST /orders at 8
connections (gc.callbacks around each pass), three full passes in a 30 s run took 130-220 ms each, every thread
stopped meanwhile: requests in flight and the group commit's batch, a whole tail percentile by themselves.
`gc.freeze()` moves the objects alive at that moment to a permanent generation no pass visits; what requests
allocate afterwards is collected as before, by the same thresholds. The same run with them frozen: eight full
passes in 30 s, the longest 31 ms.

Called where a process has loaded what it will run: the WSGI module, after the application and its URL
patterns are loaded (every view imported through them), and each Celery process that runs tasks. Garbage
in cycles at that point is collected first, so that nothing collectable is frozen. A frozen object is still
freed when its last reference goes; only a cycle of frozen objects that later becomes garbage is never
collected, and what start-up loads lives as long as the process.
"""

from __future__ import annotations

import gc
import os

DISABLE = "ITIRP_GC_FREEZE"


def freeze_loaded() -> int:
    """Collect, then freeze what is alive; answers how many objects the permanent generation holds.

    ITIRP_GC_FREEZE=0 in the environment leaves the collector as CPython sets it (to compare, or to hunt a leak
    with gc.get_objects(), which does not list frozen objects)."""
    if os.environ.get(DISABLE, "1") == "0":
        return gc.get_freeze_count()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def load_urls() -> None:
    """Import everything the URL patterns name (views, serializers, their services), as the first request would."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the property imports the URLconf's modules


def watch_collector() -> None:
    """Time the collector's passes from now on: a long one is counted and logged (core.pauses)."""
    from core import pauses

    pauses.watch_collector()
