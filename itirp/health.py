"""Health checks of the backing services, run in parallel and each bounded in time.

A check is a function returning a dict with at least "status" ("up" or "down"); one that raises is down,
one that hangs past HEALTH_CHECK_TIMEOUT_SECONDS is down with "timeout". CHECKS names the ones in force:
database, broker, workers (a Celery ping), the circuit breaker (down while OPEN: orders cannot execute) and
the audit trail's integrity alarm (down while sealing is stopped or the last verification failed).

The answer comes within the timeout whatever hangs: checks run in daemon threads and are abandoned at the
deadline. A check still hanging from an earlier call is not started again (its component is reported down
at once), so a hung service cannot make health polling pile up threads.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.utils import load_backend
from django.utils import timezone

from audit.integrity.alarm import integrity_alarm
from core.metrics import queue_depth
from orders.breaker import OPEN, breaker_check

Check = Callable[[], dict[str, Any]]


def _budget() -> float:
    return float(settings.HEALTH_CHECK_TIMEOUT_SECONDS)


def check_database(*, alias: str = "default", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A fresh connection (not the request's) runs SELECT 1. `overrides` change its settings (tests)."""
    db = copy.deepcopy(connections.settings[alias])
    db.update(overrides or {})
    if db["ENGINE"].endswith("postgresql"):
        # libpq's connect_timeout is whole seconds (2 at least); the thread is abandoned at the deadline anyway.
        db.setdefault("OPTIONS", {})["connect_timeout"] = 2
    conn = load_backend(db["ENGINE"]).DatabaseWrapper(db, alias)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"status": "up", "vendor": conn.vendor}
    finally:
        conn.close()


def broker_connection() -> Any:
    """A kombu connection of its own, from settings now (not the Celery app's cached configuration)."""
    from kombu import Connection

    timeout = _budget()
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        # polling_interval also shortens Redis's BRPOP wait (1 s by default), which bounds how fast the
        # ping's reply collection notices its timeout.
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout, polling_interval=0.1)
    return Connection(settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=timeout)


def check_broker() -> dict[str, Any]:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
            return {"status": "down", "error": "broker folder missing or not writable"}
        return {"status": "up", "transport": "filesystem", "queue_depth": queue_depth()["waiting"]}
    with broker_connection() as conn:
        conn.ensure_connection(max_retries=0, timeout=_budget())
        result: dict[str, Any] = {"status": "up", "transport": conn.transport_cls}
        if conn.transport_cls in ("redis", "rediss"):
            conn.default_channel.client.ping()
            result["queue_depth"] = queue_depth()["waiting"]
        return result


def check_workers() -> dict[str, Any]:
    """A Celery ping through the broker; up when at least one worker answers in time."""
    from itirp.celery import app

    started = time.monotonic()
    with broker_connection() as conn:
        conn.ensure_connection(max_retries=0, timeout=_budget())
        # Wait for replies with what is left of the budget (a margin kept for the answer), at most 0.5 s.
        timeout = round(max(0.05, min(0.5, _budget() - (time.monotonic() - started) - 0.15)), 2)
        replies = app.control.ping(timeout=timeout, connection=conn, limit=1)
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return {"status": "down", "error": f"no worker answered a ping within {timeout}s"}
    return {"status": "up", "answered": names}


def check_breaker() -> dict[str, Any]:
    """Down while OPEN: the venue is not called and orders fail fast. HALF_OPEN lets a trial through (up)."""
    snapshot = breaker_check()
    status = "down" if snapshot["status"] == OPEN else "up"
    result = {"status": status, "state": snapshot["status"], "failures": snapshot["failures"]}
    if snapshot.get("open_until"):
        result["open_until"] = snapshot["open_until"]
    if status == "down":
        result["error"] = f"circuit breaker open until {snapshot.get('open_until')}: venue calls refused"
    return result


def check_audit() -> dict[str, Any]:
    """Down while the audit integrity alarm is raised (sealing stopped, or the last verification FAILED)."""
    alarm = integrity_alarm()
    if not alarm:
        return {"status": "up"}
    return {"status": "down", "error": alarm["summary"][:300], "since": alarm.get("since")}


CHECKS: dict[str, Check] = {
    "database": check_database,
    "broker": check_broker,
    "workers": check_workers,
    "breaker": check_breaker,
    "audit": check_audit,
}

_running: dict[str, threading.Thread] = {}
_running_lock = threading.Lock()


def run_checks(checks: dict[str, Check] | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Run every check at once; the whole answer takes at most about `timeout` seconds."""
    checks = checks if checks is not None else CHECKS
    timeout = timeout if timeout is not None else _budget()
    results: dict[str, dict[str, Any]] = {}

    def run(name: str, check: Check) -> None:
        started = time.monotonic()
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 - a failing check is a down component, named
            result = {"status": "down", "error": f"{exc.__class__.__name__}: {str(exc)[:200]}"}
        result.setdefault("latency_ms", round((time.monotonic() - started) * 1000, 1))
        results[name] = result

    threads: dict[str, threading.Thread] = {}
    with _running_lock:
        for name, check in checks.items():
            key = f"{name}:{id(check)}"
            previous = _running.get(key)
            if previous is not None and previous.is_alive():
                results[name] = {"status": "down", "error": "an earlier check is still hanging"}
                continue
            thread = threading.Thread(target=run, args=(name, check), daemon=True, name=f"health-{name}")
            _running[key] = threads[name] = thread
    deadline = time.monotonic() + timeout
    for thread in threads.values():
        thread.start()
    for name, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            results[name] = {"status": "down", "error": f"timeout after {timeout}s"}
    components = {name: dict(results[name]) for name in checks}
    failing = sorted(name for name, c in components.items() if c["status"] != "up")
    report: dict[str, Any] = {
        "status": "degraded" if failing else "healthy",
        "timestamp": timezone.now(),
        "components": components,
        "failing": failing,
    }
    if failing:
        report["message"] = "Degraded: " + ", ".join(f"{name} down" for name in failing)
    return report
