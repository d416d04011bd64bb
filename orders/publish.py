"""Queuing execution tasks so that a broker outage never makes a request wait (issue 20, item 3).

A publish gets one try on a connection of its own with short timeouts (PUBLISH_TIMEOUT_SECONDS) and no
kombu reconnect loop: Celery's producer pool would retry the connection for broker_connection_timeout (2 s).
The first failure marks the broker down for this process; while it is down, publishes do not touch the
network at all and their messages are parked in memory. A relay thread tries the broker every
RELAY_INTERVAL_SECONDS and, once it answers, sends the parked messages (so waiting orders are queued within
about a second of the broker's return) and lets publishes through again. The parked messages are a fast
path only: an order is durable in PostgreSQL, so a process that dies with messages parked loses nothing,
the worker's requeue on reconnect and the sweeper queue it again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import current_app

logger = logging.getLogger("itirp.execution")

PUBLISH_TIMEOUT_SECONDS = 0.04
RELAY_INTERVAL_SECONDS = 0.25
MAX_PARKED = 10_000  # beyond this the sweeper is the fallback; memory stays bounded during a long outage


@dataclass(frozen=True)
class Message:
    key: str  # the order id: one parked message per order, the newest wins
    args: list[str]
    kwargs: dict[str, Any]
    countdown: float | None = None


def fast_transport_options(base: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Transport options for a publish that fails at once: no connection retries, short socket timeouts."""
    return {
        **base,
        "max_retries": 0,
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry_on_timeout": False,
    }


def web_transport_options(base: dict[str, Any]) -> dict[str, Any]:
    """Celery's own producer pool in a web process (itirp.celery): the same single try and connect timeout;
    a longer socket timeout, since a message it fails to send is not parked (the worker's requeue on reconnect
    and the sweeper queue its order)."""
    return {**fast_transport_options(base, PUBLISH_TIMEOUT_SECONDS), "socket_timeout": 0.25}


class Publisher:
    def __init__(
        self,
        *,
        url: str | None = None,
        timeout: float = PUBLISH_TIMEOUT_SECONDS,
        interval: float = RELAY_INTERVAL_SECONDS,
    ) -> None:
        self.url, self.timeout, self.interval = url, timeout, interval
        self._local = threading.local()
        self._lock = threading.Lock()
        self._parked: dict[str, Message] = {}
        self._down_since: float | None = None
        self._relay: threading.Thread | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def parked(self) -> int:
        return len(self._parked)

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            app = current_app  # the project's Celery app (itirp.celery), which apps do not import

            conn = app.connection_for_write(
                self.url,
                connect_timeout=self.timeout,
                transport_options=fast_transport_options(dict(app.conf.broker_transport_options or {}), self.timeout),
            )
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn, self._local.conn = getattr(self._local, "conn", None), None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # noqa: BLE001, S110 - a broken connection may fail to close; it is dropped anyway
                pass

    def _send(self, message: Message) -> None:
        from orders.tasks import order_execute

        # argsrepr/kwargsrepr given: Celery would otherwise build them with its saferepr on every submission
        order_execute.apply_async(
            args=message.args,
            kwargs=message.kwargs,
            countdown=message.countdown,
            connection=self._connection(),
            retry=False,
            argsrepr=repr(message.args),
            kwargsrepr=repr(message.kwargs),
        )

    def publish(self, message: Message) -> bool:
        """Queue the message now (True), or park it for the relay (False) when the broker is down."""
        if not self.down:
            try:
                self._send(message)
                return True
            except Exception as exc:  # noqa: BLE001 - any broker failure; the order is durable
                self._drop_connection()
                self._mark_down(exc)
        self._park(message)
        return False

    def _mark_down(self, exc: Exception) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                # Once per outage, not per request.
                logger.warning(
                    "broker unavailable (%s: %s): execution messages parked and relayed when it returns",
                    type(exc).__name__,
                    exc,
                )

    def _park(self, message: Message) -> None:
        with self._lock:
            if len(self._parked) < MAX_PARKED or message.key in self._parked:
                self._parked[message.key] = message
            if self._relay is None or not self._relay.is_alive():
                self._relay = threading.Thread(target=self._relay_loop, name="itirp-publish-relay", daemon=True)
                self._relay.start()

    def _relay_loop(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                batch = list(self._parked.values())
            sent = 0
            try:
                for message in batch:
                    self._send(message)
                    with self._lock:
                        if self._parked.get(message.key) is message:
                            del self._parked[message.key]
                    sent += 1
            except Exception:  # noqa: BLE001 - still down: try again after the interval
                self._drop_connection()
                continue
            with self._lock:
                if self._parked:
                    continue
                outage = time.monotonic() - self._down_since if self._down_since is not None else 0.0
                self._down_since, self._relay = None, None
            logger.warning("broker back after %.1f s: %d parked execution message(s) queued", outage, sent)
            return


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


def publisher() -> Publisher:
    global _publisher  # noqa: PLW0603 - one per process, created on first use (after any fork)
    if _publisher is None:
        with _publisher_lock:
            if _publisher is None:
                _publisher = Publisher()
    return _publisher


def _after_fork_in_child() -> None:
    # A forked child (Celery's prefork pool) must not share its parent's sockets, locks or relay thread.
    global _publisher, _publisher_lock  # noqa: PLW0603
    _publisher, _publisher_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
