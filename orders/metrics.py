"""The orders app's gauges for /metrics, read from Redis when scraped: the shared circuit breaker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from orders.breaker import breaker_check


def breaker_gauges() -> Iterator[Any]:
    snapshot = breaker_check()
    state = GaugeMetricFamily(
        "itirp_circuit_breaker_state", "Shared circuit breaker: 1 for the current state", labels=["state"]
    )
    for name in ("CLOSED", "OPEN", "HALF_OPEN"):
        state.add_metric([name], 1 if snapshot["status"] == name else 0)
    yield state
    yield GaugeMetricFamily(
        "itirp_circuit_breaker_failures", "Consecutive venue failures counted", value=snapshot["failures"]
    )
