"""Fixtures of the execution tests: order submission, waiting on the database, a beat process, venue memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.support.worker import ROOT, stop, worker_env

# Worker settings for a fast, certain venue; tests override what they exercise.
FAST_VENUE = {
    "VENUE_LATENCY_MS": "0",
    "VENUE_SUCCESS_PROBABILITY": "1",
    "VENUE_MAX_SLIPPAGE": "0",
    "EXECUTION_RETRY_BACKOFF_SECONDS": "1,2,4",
}


@pytest.fixture(autouse=True)
def _market(_market: bool) -> bool:
    """Execution's tests trade AAPL at 100 (their orders' default price): a market where a buy at 100 fills at
    100 and is valued at 100, the seed's arithmetic these tests check."""
    if _market:
        from tests.support.market import price

        price("AAPL", "100")
    return _market


class Market:
    """The venue boundary for groups (whose calls run on threads of their own, outside the test's transaction
    and its prices): a buy fills at its limit once `ask` is at or under it, else it is not marketable."""

    name = "SIM"

    def __init__(self, ask: str) -> None:
        self.ask = Decimal(ask)
        self.calls: list[str] = []

    def execute(self, order: Any, *, timeout: float) -> Any:
        from orders import venue

        self.calls.append(order.order_id)
        if order.price < self.ask:
            raise venue.VenueNotMarketable("Not marketable", self.ask)
        return venue.Execution("SIM", f"M-{order.order_id}-{self.ask}", order.quantity, order.price)


def as_venue(market: Market, settings: Any, monkeypatch: Any) -> Any:
    """`market` as execution's venue boundary, for groups of up to four."""
    settings.EXECUTION_GROUP_MAX = 4
    monkeypatch.setattr("orders.execution.venue", lambda: market)
    return market


def submit(user: Any, symbol: str = "AAPL", side: str = "BUY", quantity: str = "10", price: str = "100") -> Any:
    from orders.submission import OrderRequest, order_submit

    order, decision = order_submit(
        user=user, request=OrderRequest(symbol=symbol, side=side, quantity=Decimal(quantity), price=Decimal(price))
    )
    assert decision.approved, decision.message
    return order


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30, interval: float = 0.2, what: str = "") -> Any:
    """Poll until predicate() is truthy; fail the test (never hang) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")


def status_of(order: Any) -> str:
    from orders.models import Order

    return Order.objects.values_list("status", flat=True).get(pk=order.pk)


def events_of(order: Any, *types: str) -> list[Any]:
    from audit.models import Event

    qs = Event.objects.filter(order_id=order.pk).order_by("sequence")
    return list(qs.filter(event_type__in=types) if types else qs)


def events(*types: str) -> list[Any]:
    from audit.models import Event

    return list(Event.objects.filter(event_type__in=types).order_by("sequence"))


@pytest.fixture
def redis() -> Any:
    from orders.breaker import redis_client

    client = redis_client()
    client.flushdb()  # my isolation database only (REDIS_URL)
    return client


@pytest.fixture
def venue_memory(redis: Any) -> Any:
    from orders.venue import RedisVenueMemory

    return RedisVenueMemory(redis, settings.EXECUTION_REDIS_PREFIX)


@contextmanager
def celery_beat(*, name: str = "beat", ready_timeout: float = 30, **extra: str) -> Iterator[subprocess.Popen]:
    """`celery beat` with the DatabaseScheduler against the test database, stopped at the end of the block."""
    log_path = Path(os.environ.get("ITIRP_VAR_DIR", "/tmp")) / f"{name}-{os.getpid()}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in finally
    cmd = [sys.executable, "-m", "celery", "-A", "itirp", "beat", "--loglevel", "DEBUG", "--max-interval", "1"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=worker_env(**extra), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + ready_timeout
        while "beat: Starting" not in log_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"beat did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        proc.log_path = log_path  # type: ignore[attr-defined]
        yield proc
    finally:
        stop(proc)
        log.close()


@pytest.fixture
def redis_or_none() -> Any:
    if not settings.REDIS_URL:
        return None
    from orders.breaker import redis_client

    client = redis_client()
    client.flushdb()
    return client
