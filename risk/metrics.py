"""The risk app's gauges for /metrics, read from the database when scraped: the kill switch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from risk.models import FIRM_STATE_ID, RiskState


def kill_switch_gauges() -> Iterator[Any]:
    active = RiskState.objects.filter(pk=FIRM_STATE_ID, kill_switch_enabled=True).exists()
    yield GaugeMetricFamily("itirp_kill_switch_active", "1 while the kill switch halts trading", value=int(active))
