"""Prometheus metrics (itirp_*) recorded by every web and worker process, and the counts of GET /api/v1/metrics.

Multi-process (PROMETHEUS_MULTIPROC_DIR, on by default): every process - each web worker, each Celery
pool child - writes its counters and histograms to its own memory-mapped files in one shared directory, and
a scrape of /metrics on any web process sums them all (ecosystem.md, pitfall 9). Files are named after
host and pid, so containers sharing the directory never write one file; processes that start a group
(the web server's main process, Celery's) first delete the files of dead processes of their own host.

Gauges of shared state (circuit breaker, kill switch, queue depth) are not recorded by processes at all:
they are read from Redis and the database when scraped, so every scrape sees the one true value.

Counters of what happened are fed from the events as they are appended (audit.services.events_record ->
audit.services, on commit): one place that every order, risk, execution and breaker change passes through.
"""

from __future__ import annotations

import contextvars
import hmac
import ipaddress
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from core import pauses
from core.logs import get_logger

log = get_logger("metrics")

# --- Multi-process set-up (before any metric is created) ---------------------------------------------

_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"


_own: tuple[int, str] = (0, "")


def process_identifier(pid: int | None = None) -> str:
    """`host-pid`: unique among processes sharing the directory, even across containers (pids repeat there).

    prometheus_client asks for this process's on every update of every metric (to notice a fork): its string
    is kept, made again only when the pid changes."""
    global _own
    if pid is not None:
        return f"{_HOST}-{pid}"
    current = os.getpid()
    if _own[0] != current:
        _own = (current, f"{_HOST}-{current}")
    return _own[1]


def multiproc_dir() -> str:
    return str(getattr(settings, "PROMETHEUS_MULTIPROC_DIR", "") or "")


if multiproc_dir():
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir()
    Path(multiproc_dir()).mkdir(parents=True, exist_ok=True)
    # Chosen explicitly rather than at prometheus_client's import, so the import order cannot matter.
    values.ValueClass = values.MultiProcessValue(process_identifier)

_FILE = re.compile(r"^[a-z]+(?:_[a-z]+)?_(?P<host>[A-Za-z0-9.-]+)-(?P<pid>\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiproc_dir_prepare() -> list[str]:
    """Delete the files of this host's dead processes (a previous run); files of live ones stay.

    Called by itirp.serve (or gunicorn's master, on_starting) and Celery's main process (worker_init) before
    they start their workers.
    A counter summed over processes may drop when its dead processes' files go; Prometheus reads that as a
    counter reset, which rate() and increase() handle."""
    path = multiproc_dir()
    if not path:
        return []
    Path(path).mkdir(parents=True, exist_ok=True)
    removed = []
    for entry in os.scandir(path):
        match = _FILE.match(entry.name)
        if match and match["host"] == _HOST and not _alive(int(match["pid"])):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def mark_process_dead(pid: int) -> None:
    """Bookkeeping for a process that exited (gunicorn child_exit, Celery worker_process_shutdown)."""
    if multiproc_dir():
        multiprocess.mark_process_dead(process_identifier(pid), multiproc_dir())


# --- The metrics ----------------------------------------------------------------------------------------

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EXECUTION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

ORDERS_SUBMITTED = Counter("itirp_orders_submitted", "Orders submitted (ORDER_CREATED appended)")
ORDERS_FINAL = Counter(
    "itirp_orders", "Orders that reached a final status: REJECTED, EXECUTED, FAILED, CANCELLED", ["status"]
)
ORDER_SUBMISSION_SECONDS = Histogram(
    "itirp_order_submission_seconds",
    "POST /api/v1/orders, whole request as the web process saw it, by HTTP status",
    ["status"],
    buckets=LATENCY_BUCKETS,
)
RISK_DECISION_SECONDS = Histogram(
    "itirp_risk_decision_seconds",
    "From an order reaching its view to its risk decision recorded (auth, validation, risk lock wait, checks, "
    "insert), by decision",
    ["decision"],
    buckets=LATENCY_BUCKETS,
)
LIMIT_VIOLATIONS = Counter(
    "itirp_limit_violations", "Limits violated by rejected orders (KILL_SWITCH for kill-switch rejections)", ["type"]
)
EXECUTION_SECONDS = Histogram(
    "itirp_execution_seconds",
    "One execution attempt (orders.execute task, venue call included), by outcome: EXECUTED, RETRY, FAILED, "
    "SKIPPED, ERROR",
    ["outcome"],
    buckets=EXECUTION_BUCKETS,
)
EXECUTION_RETRIES = Counter("itirp_execution_retries", "Failed execution attempts that were queued again")
BREAKER_TRANSITIONS = Counter("itirp_circuit_breaker_transitions", "Circuit breaker transitions, by new state", ["to"])
EVENTS_APPENDED = Counter("itirp_events_appended", "Events appended to the event store", ["event_type"])
# Group commit (orders.batching): how many submissions each batch decided, and the wall time of its
# transaction (waiting for the risk lock, holding it, committing): an upper bound of the lock's hold.
BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
BATCH_SECONDS_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1.0)
ORDER_BATCH_SIZE = Histogram(
    "itirp_order_batch_size", "Submissions decided in one group-commit batch", buckets=BATCH_SIZE_BUCKETS
)
ORDER_BATCH_SECONDS = Histogram(
    "itirp_order_batch_seconds",
    "Wall time of one group-commit batch (its transaction: risk lock wait and hold, checks, inserts, commit)",
    buckets=BATCH_SECONDS_BUCKETS,
)
RISK_LOCK_HOLD_SECONDS = Histogram(
    "itirp_risk_lock_hold_seconds",
    "Hold of the risk lock by one group-commit batch: from the answer of the read that took it to the end of"
    " the commit (a lower bound: the lock is granted during that read's round trip)",
    buckets=BATCH_SECONDS_BUCKETS,
)
# Pauses that hold up every request of a process at once (core.pauses): each is logged too.
RISK_LOCK_LONG_HOLDS = Counter(
    "itirp_risk_lock_long_holds",
    "Holds of the risk lock of RISK_LOCK_WARN_SECONDS or more (lock read's answer to commit), by the function"
    " holding it",
    ["holder"],
)
GC_LONG_PAUSES = Counter(
    "itirp_gc_long_pauses",
    "Passes of the cyclic garbage collector of GC_PAUSE_WARN_SECONDS or more (every thread waits), by generation",
    ["generation"],
)
HTTP_SECONDS = Histogram(
    "itirp_http_request_seconds",
    "HTTP requests served, by method, route name and status class",
    ["method", "view", "status"],
    buckets=LATENCY_BUCKETS,
)

FINAL_BY_EVENT = {
    "RISK_CHECK_FAILED": "REJECTED",
    "EXECUTION_COMPLETED": "EXECUTED",
    "EXECUTION_FAILED": "FAILED",
    "ORDER_CANCELLED": "CANCELLED",
}
_BREAKER_BY_EVENT = {
    "CIRCUIT_BREAKER_OPENED": "OPEN",
    "CIRCUIT_BREAKER_HALF_OPENED": "HALF_OPEN",
    "CIRCUIT_BREAKER_CLOSED": "CLOSED",
}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# When the current request reached its view (set by RequestMetricsMiddleware): the start of a risk decision.
_view_started: contextvars.ContextVar[float | None] = contextvars.ContextVar("itirp_view_started", default=None)


def events_appended(events: Iterable[Any]) -> None:
    """Count appended events: what they say about orders, risk decisions, retries and the breaker."""
    started = _view_started.get()
    for event in events:
        kind = str(event.event_type)
        EVENTS_APPENDED.labels(kind).inc()
        if kind == "ORDER_CREATED":
            ORDERS_SUBMITTED.inc()
        elif kind in ("RISK_CHECK_PASSED", "RISK_CHECK_FAILED") and started is not None:
            decision = "approved" if kind == "RISK_CHECK_PASSED" else "rejected"
            RISK_DECISION_SECONDS.labels(decision).observe(time.monotonic() - started)
        if kind in FINAL_BY_EVENT:
            ORDERS_FINAL.labels(FINAL_BY_EVENT[kind]).inc()
        if kind == "RISK_CHECK_FAILED":
            payload = event.payload or {}
            # {code, scope, limit, projected} since scoped limits; a code alone in older events
            violations = [v["code"] if isinstance(v, dict) else v for v in payload.get("violations") or []]
            if payload.get("kill_switch"):  # the firm's halt: counted as the seed counted it
                violations = [v for v in violations if v != "TRADING_HALTED"] + ["KILL_SWITCH"]
            for violation in violations:
                LIMIT_VIOLATIONS.labels(str(violation)).inc()
        elif kind == "EXECUTION_ATTEMPT_FAILED" and (event.payload or {}).get("will_retry"):
            EXECUTION_RETRIES.inc()
        elif kind in _BREAKER_BY_EVENT:
            BREAKER_TRANSITIONS.labels(_BREAKER_BY_EVENT[kind]).inc()


def execution_observed(*, seconds: float, outcome: str) -> None:
    EXECUTION_SECONDS.labels(outcome).observe(seconds)


class RequestMetricsMiddleware:
    """Times every request (itirp_http_request_seconds) and order submissions (itirp_order_submission_seconds)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        token = _view_started.set(None)
        try:
            response = self.get_response(request)
        finally:
            _view_started.reset(token)
        elapsed = time.monotonic() - started
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or "unnamed") if match else "unmatched"
        method = request.method if request.method in _METHODS else "OTHER"
        HTTP_SECONDS.labels(method, view, f"{response.status_code // 100}xx").observe(elapsed)
        if view == "orders" and method == "POST":
            ORDER_SUBMISSION_SECONDS.labels(str(response.status_code)).observe(elapsed)
        pauses.report()
        return response

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        _view_started.set(time.monotonic())


# --- Read at scrape time: shared state ------------------------------------------------------------------

QUEUE_PRIORITY_SEPARATOR = "\x06\x16"
QUEUE_PRIORITY_STEPS = (3, 6, 9)  # kombu's Redis transport keeps priorities >0 in lists of their own


@lru_cache(maxsize=4)
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


def queue_depth(queue: str | None = None) -> dict[str, int]:
    """Messages waiting in the Celery queue (Redis: LLEN of its lists) and reserved but unacknowledged."""
    queue = queue or getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
        return {"waiting": sum(1 for _ in folder.glob(f"*.{queue}.msg")), "unacked": 0}
    if not url.startswith(("redis://", "rediss://")):
        raise RuntimeError(f"queue depth is not measured for broker {url.split(':', 1)[0]}")
    client = _redis(url)
    keys = [queue, *(f"{queue}{QUEUE_PRIORITY_SEPARATOR}{step}" for step in QUEUE_PRIORITY_STEPS)]
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.llen(key)
        pipe.hlen("unacked")
        *lengths, unacked = pipe.execute()
    return {"waiting": int(sum(lengths)), "unacked": int(unacked)}


# Sources of gauges read at scrape time, registered by the apps that own them (their AppConfig.ready()):
# name -> a function yielding metric families. Core knows none of them by name.
_SCRAPED: dict[str, Callable[[], Iterable[Metric]]] = {}


def register_scraped(source: str, read: Callable[[], Iterable[Metric]]) -> None:
    """Add a source of gauges read when /metrics is scraped (e.g. the circuit breaker, the kill switch)."""
    _SCRAPED[source] = read


def _queue_gauges() -> Iterator[Metric]:
    depth = queue_depth()
    yield GaugeMetricFamily("itirp_queue_depth", "Tasks waiting in the Celery queue", value=depth["waiting"])
    yield GaugeMetricFamily(
        "itirp_queue_unacked", "Tasks reserved by workers and not yet acknowledged", value=depth["unacked"]
    )


register_scraped("broker", _queue_gauges)


class SharedStateCollector:
    """Gauges read when scraped (the registered sources); *_up says what could be read."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "itirp_scrape_source_up", "Whether a source of scraped gauges answered", labels=["source"]
        )
        for source, read in sorted(_SCRAPED.items()):
            try:
                yield from list(read())
                up.add_metric([source], 1)
            except Exception as exc:  # noqa: BLE001 - a scrape reports what it can; the failure is a gauge
                log.warning("scrape_source_failed", source=source, error=f"{type(exc).__name__}: {exc}"[:200])
                up.add_metric([source], 0)
        yield up


class _Forward:
    """Single-process mode: the default registry's metrics, inside the scrape's registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if multiproc_dir():
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir())
    else:
        registry.register(_Forward())
    registry.register(SharedStateCollector())
    return generate_latest(registry)


# --- /metrics (Prometheus text exposition) -----------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(raw: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in raw)


def _denied(request: HttpRequest) -> HttpResponse | None:
    """None when the scraper may read: its address in METRICS_ALLOWED_NETWORKS and its bearer METRICS_TOKEN
    (each only when set)."""
    networks = _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    if networks:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            address = None
        if address is None or not any(address in net for net in networks):
            return HttpResponse(
                "Forbidden: address not allowed to read metrics\n", status=403, content_type="text/plain"
            )
    if settings.METRICS_TOKEN:
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {settings.METRICS_TOKEN}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            response = HttpResponse("Unauthorized: bearer token required\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return None


@require_http_methods(["GET", "HEAD"])
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: every itirp_* metric of every process, Prometheus text format."""
    denied = _denied(request)
    if denied is not None:
        return denied
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
