"""Fixtures of the observability tests: captured JSON log lines, Prometheus text parsing, a closed port."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.logs import JsonFormatter


class CapturedLogs:
    """Everything the root logger wrote while the fixture was active, rendered by the real JSON formatter."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["event"] == name]


@pytest.fixture
def json_logs() -> Iterator[CapturedLogs]:
    captured = CapturedLogs()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # the suite runs at WARNING (tests/bootstrap.py)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_enqueue(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Orders stay APPROVED: nothing is sent to the broker (tests without a worker)."""
    sent: list[Any] = []
    monkeypatch.setattr("orders.submission.enqueue", lambda *args, **kwargs: sent.append(args) or False)
    return sent


@pytest.fixture
def redis_db() -> Any:
    """My isolation Redis database (REDIS_URL), emptied: no stale queue messages, breaker CLOSED."""
    from orders.breaker import redis_client

    client = redis_client()
    client.flushdb()
    return client


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: Any) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return parse_exposition(response.content.decode())


@pytest.fixture(autouse=True)
def _market(_market: bool) -> bool:
    """These tests trade AAPL at 100 (order_body): a market at 100, where their buys fill at once."""
    if _market:
        from tests.support.market import price

        price("AAPL", "100")
    return _market


def order_body(**fields: Any) -> dict[str, Any]:
    return {"symbol": "AAPL", "side": "BUY", "quantity": "10", "price": "100", **fields}


def submit(user: Any, **fields: Any) -> Any:
    from orders.submission import OrderRequest, order_submit

    body = order_body(**fields)
    order, _ = order_submit(
        user=user,
        request=OrderRequest(
            symbol=body["symbol"], side=body["side"], quantity=Decimal(body["quantity"]), price=Decimal(body["price"])
        ),
    )
    return order


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30, what: str = "") -> Any:
    """Poll until predicate() is truthy; fail (never hang) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")


# A venue that fills at once at the order price (the simulator; the one boundary that may be simulated).
FAST_VENUE = {"VENUE_LATENCY_MS": "0", "VENUE_SUCCESS_PROBABILITY": "1", "VENUE_MAX_SLIPPAGE": "0"}


@pytest.fixture(scope="session", autouse=True)
def _metrics_dir_without_stale_files() -> None:
    """Files left by earlier test runs (dead pids) go now, not when a test's worker starts (worker_init
    removes them too, which would make a counter drop in the middle of a before/after comparison)."""
    from core import metrics

    metrics.multiproc_dir_prepare()
