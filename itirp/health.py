"""Health checks of the backing services, run in parallel and each bounded in time.

A check is a function returning a dict with at least "status" ("up" or "down"); one that raises is down,
one that hangs past HEALTH_CHECK_TIMEOUT_SECONDS is down with "timeout". CHECKS names the ones in force.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

Check = Callable[[], dict[str, Any]]


def check_database() -> dict[str, Any]:
    conn = connections.create_connection("default")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"status": "up", "vendor": conn.vendor}
    finally:
        conn.close()


def check_broker() -> dict[str, Any]:
    from itirp.celery import app

    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
            return {"status": "down", "error": "broker folder missing or not writable"}
        return {"status": "up", "transport": "filesystem"}
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS)
        return {"status": "up", "transport": conn.transport_cls}


CHECKS: dict[str, Check] = {"database": check_database, "broker": check_broker}


def run_checks(checks: dict[str, Check] | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Run every check at once; the whole answer takes at most about `timeout` seconds."""
    checks = checks if checks is not None else CHECKS
    timeout = timeout if timeout is not None else settings.HEALTH_CHECK_TIMEOUT_SECONDS
    results: dict[str, dict[str, Any]] = {}

    def run(name: str, check: Check) -> None:
        started = time.monotonic()
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 - a failing check is a down component, named
            result = {"status": "down", "error": f"{exc.__class__.__name__}: {str(exc)[:200]}"}
        result.setdefault("latency_ms", round((time.monotonic() - started) * 1000, 1))
        results[name] = result

    threads = {name: threading.Thread(target=run, args=(name, check), daemon=True) for name, check in checks.items()}
    deadline = time.monotonic() + timeout
    for thread in threads.values():
        thread.start()
    for name, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            results[name] = {"status": "down", "error": f"timeout after {timeout}s"}
    components = {name: results[name] for name in checks}
    healthy = all(c["status"] == "up" for c in components.values())
    return {
        "status": "healthy" if healthy else "degraded",
        "timestamp": timezone.now(),
        "components": components,
        "failing": sorted(name for name, c in components.items() if c["status"] != "up"),
    }
