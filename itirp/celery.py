"""The Celery application: configured from Django settings (CELERY_* names), tasks autodiscovered."""

import functools
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")

app = Celery("itirp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Celery's Django fixup closes every database connection before and after each task unless this is set, so a
# worker opened a new PostgreSQL connection (a backend forked, authenticated) for every execution message.
# Connections are kept for this many tasks instead; Django's own rules for persistent connections
# (CONN_MAX_AGE, CONN_HEALTH_CHECKS, a connection that saw an error) are applied before each task by
# _database_connections_checked below, as Django does at each request.
app.conf.CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))


# --- Broker loss: the worker survives it (issue 20, item 2) ---------------------------------------------------
# kombu 5.7.0's redis transport: when the broker vanishes, Celery's consumer calls Connection.collect(), which
# detaches the transport from its kombu Connection (transport.client = None), then Connection.release(). If
# the task channel was not closed by collect (a BRPOP was in flight while the error surfaced on another socket,
# e.g. the pidbox's), release() closes it now: Channel.close() drops its pools, then restores the unacked
# messages, which builds a new pool from `self.connection.client.hostname`: AttributeError ("'NoneType' object
# has no attribute 'hostname'"). Not a connection error, so Celery does not retry: "Unrecoverable error" and
# the worker exits. The same stack is in celery/kombu#582 and #970 (closed without a fix for this path).
# Here a channel whose transport is closed answers with a connection error instead, which Celery's teardown
# ignores and follows with its reconnect loop. The unacked messages stay in Redis's unacked hash (restored by
# any worker after the visibility timeout) and, sooner, the requeue on reconnect below queues their orders.
def _patch_kombu_redis_closed_transport() -> None:
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.Channel._connparams
    if getattr(original, "itirp_patched", False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport is None or transport.client is None:
            raise kombu_redis.redis.exceptions.ConnectionError("broker connection closed: channel cannot reconnect")
        return original(self, asynchronous=asynchronous)

    _connparams.itirp_patched = True  # type: ignore[attr-defined]
    kombu_redis.Channel._connparams = _connparams  # type: ignore[method-assign]  # the narrow patch, on purpose


_patch_kombu_redis_closed_transport()


# kombu 5.7.0's redis transport builds a new redis client for every publish, acknowledgement and queue read
# (Channel.conn_or_acquire -> _create_client): redis-py copies its ~170 response callbacks into a
# case-insensitive dict for each one, a fifth of a millisecond of CPU per message in the web process (measured
# with cProfile on POST /orders) and again in the worker's consumer. A channel keeps its synchronous client
# instead, made anew when the channel's connection pool is (after a reconnect); a redis-py client is
# thread-safe (each command takes a connection from the pool). The asynchronous (consumer) client is untouched.
def _patch_kombu_redis_client_per_call() -> None:
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.Channel._create_client
    if getattr(original, "itirp_patched", False):
        return

    def _create_client(self: Any, asynchronous: bool = False) -> Any:
        if asynchronous:
            return original(self, asynchronous=True)
        pool = self.pool
        client = self.__dict__.get("itirp_sync_client")
        if client is None or client.connection_pool is not pool:
            client = self.__dict__["itirp_sync_client"] = original(self)
        return client

    _create_client.itirp_patched = True  # type: ignore[attr-defined]
    kombu_redis.Channel._create_client = _create_client  # type: ignore[method-assign]  # the narrow patch


_patch_kombu_redis_client_per_call()


class RequeueWaitingOnConnect(bootsteps.StartStopStep):
    """Each time the worker's consumer (re)connects: queue again the orders left APPROVED (issue 20, item 3).

    Their messages may have been lost with the broker (a Redis without persistence) or never sent (a web
    process that died with messages parked). Runs in a thread so the consumer starts at once; duplicates are
    harmless (execution_start ignores an order that is no longer APPROVED). The sweeper stays the last resort.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        threading.Thread(target=_requeue_waiting, name="itirp-requeue-on-connect", daemon=True).start()


def _requeue_waiting() -> None:
    from django.db import connection

    from orders import execution

    try:
        requeued = execution.orders_requeue_waiting()
        if requeued:
            logging.getLogger("itirp.execution").warning(
                "broker (re)connected: %d waiting order(s) requeued", len(requeued)
            )
    except Exception:  # noqa: BLE001 - the sweeper remains; a failure here must not touch the consumer
        logging.getLogger("itirp.execution").exception("requeue on broker connect failed")
    finally:
        connection.close()


app.steps["consumer"].add(RequeueWaitingOnConnect)


@app.on_after_configure.connect
def _web_publishes_fail_fast(sender: Celery, **kwargs: object) -> None:
    """A web process never waits on a broker that is down, whatever publishes (orders.publish for details)."""
    from core.logs import process_role

    if process_role() == "web":
        from orders.publish import web_transport_options

        sender.conf.broker_transport_options = web_transport_options(dict(sender.conf.broker_transport_options or {}))


# --- Observability: JSON logs, correlation id across the queue, task timing (core.logs, core.metrics) ---
# Handlers import Django lazily: this module is imported (by itirp/__init__) before settings are loaded.
_task_started_at: dict[str, float] = {}
_task_context: dict[str, object] = {}


@signals.setup_logging.connect
def _setup_logging(loglevel: int | str | None = None, **kwargs: object) -> None:
    """Keep settings.LOGGING (one JSON object per line) in workers instead of Celery's own format;
    the command line's --loglevel still sets the level."""
    import logging
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@signals.worker_init.connect
def _worker_init(**kwargs: object) -> None:
    from core import metrics

    metrics.multiproc_dir_prepare()


@signals.worker_ready.connect
@signals.worker_process_init.connect
def _freeze_loaded(**kwargs: object) -> None:
    """The tasks and what they import loaded: the long-lived objects leave the collector's full passes
    (itirp.heap), in each prefork child as it starts (worker_process_init) and in the main process once ready
    (worker_ready: where the solo and threads pools run tasks, and what later children are forked from). A
    collector pass long enough to hold up the process's tasks is counted and logged (core.pauses)."""
    from itirp import heap

    heap.freeze_loaded()
    heap.watch_collector()


@signals.worker_process_shutdown.connect
def _worker_process_shutdown(pid: int | None = None, **kwargs: object) -> None:
    from core import metrics

    metrics.mark_process_dead(pid or os.getpid())


@signals.before_task_publish.connect
def _publish_correlation(headers: dict | None = None, **kwargs: object) -> None:
    """A task queued while a correlation id is bound (a request, another task) carries it in its headers."""
    import structlog

    correlation = structlog.contextvars.get_contextvars().get("correlation_id")
    if headers is not None and correlation and "correlation_id" not in headers:
        headers["correlation_id"] = str(correlation)


def _task_argument(task: object, args: tuple | None, kwargs: dict | None, name: str) -> object:
    try:
        bound = _signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return (kwargs or {}).get(name)
    return bound.arguments.get(name)


@functools.lru_cache(maxsize=256)
def _signature(run: Callable[..., object]) -> inspect.Signature:
    """A task function's signature, worked out once (inspect.signature twice per task was 2 % of the pool)."""
    return inspect.signature(run)


@signals.task_prerun.connect
def _database_connections_checked(task: object = None, **kwargs: object) -> None:
    """Before each task a worker runs, what Django does before each request: a connection older than
    CONN_MAX_AGE, or one that saw an error and no longer answers, is closed (the next query opens a new one);
    with CONN_HEALTH_CHECKS a kept one is checked at its first use. Not for a task run eagerly (inline, in
    its caller's transaction), as Celery's own fixup."""
    from django.db import close_old_connections

    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    close_old_connections()


@signals.task_prerun.connect
def _task_prerun(task_id: str | None = None, task: object = None, args: tuple | None = None, **kw: object) -> None:
    """Bind the task's correlation id (its kwarg, else its header) and order id to every line it logs.

    Undone in task_postrun (tokens, not a clear): a task run eagerly inside a request leaves the request's
    own context as it found it."""
    import structlog

    from core import context
    from core.logs import get_logger

    given = kw.get("kwargs")
    kwargs = given if isinstance(given, dict) else {}
    request = getattr(task, "request", None)
    correlation = context.parse_uuid(_task_argument(task, args, kwargs, "correlation_id")) or context.parse_uuid(
        getattr(request, "correlation_id", None)
    )
    order_id = context.parse_uuid(_task_argument(task, args, kwargs, "order_id"))
    fields: dict[str, str] = {"task": getattr(task, "name", "?"), "task_id": str(task_id)}
    if correlation is not None:
        fields["correlation_id"] = str(correlation)
    if order_id is not None:
        fields["order_id"] = str(order_id)
    _task_context[str(task_id)] = structlog.contextvars.bind_contextvars(**fields)
    _task_started_at[str(task_id)] = time.monotonic()
    # Celery's own lines (received, succeeded, retry, failed) then carry the same fields.
    get_logger("tasks").debug("task_started", retries=getattr(request, "retries", 0))


@signals.task_postrun.connect
def _task_postrun(task_id: str | None = None, task: object = None, retval: object = None, **kw: object) -> None:
    import structlog

    from core import metrics, pauses
    from core.logs import get_logger

    pauses.report()
    state = kw.get("state")
    started = _task_started_at.pop(str(task_id), None)
    seconds = time.monotonic() - started if started is not None else None
    outcome = retval if state == "SUCCESS" and isinstance(retval, str) else ("ERROR" if state == "FAILURE" else state)
    try:
        get_logger("tasks").debug(
            "task_finished",
            state=state,
            outcome=outcome,
            duration_ms=round(seconds * 1000, 2) if seconds is not None else None,
        )
        if getattr(task, "name", "") == "orders.execute" and seconds is not None:
            metrics.execution_observed(seconds=seconds, outcome=str(outcome))
    finally:
        tokens = _task_context.pop(str(task_id), None)
        if tokens:
            structlog.contextvars.reset_contextvars(**tokens)  # type: ignore[arg-type]
