"""Fixtures of the alerts tests: an evaluator whose cursor starts at the trail's end, and causes made real."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from alerts.models import Alert, AlertRule
from alerts.services import Evaluator
from audit.models import EventType
from audit.services import event_record


def default_rules() -> None:
    """The rules of alerts/migrations/0002 (a transactional test's flush removes migrated data)."""
    seed = importlib.import_module("alerts.migrations.0002_seed_rules")
    for name, kind, event_type, threshold, count, window, severity in seed.RULES:
        AlertRule.objects.get_or_create(
            name=name,
            defaults={
                "kind": kind,
                "event_type": event_type,
                "threshold": threshold,
                "count": count,
                "window_seconds": window,
                "severity": severity,
            },
        )


@pytest.fixture(autouse=True)
def _rules(_market: bool, request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(request.fixturenames):
        default_rules()  # after tests/conftest.py's _market, which opened the database


@pytest.fixture
def evaluator(db: Any) -> Evaluator:
    ev = Evaluator()
    ev.run_events()  # the first pass only places the cursor at the trail's end
    return ev


@pytest.fixture
def cause() -> Callable[..., Any]:
    """Record one event as a service would (for causes with no cheap real path: the breaker, VaR, verification)."""

    def record(event_type: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        with transaction.atomic():
            return event_record(event_type=EventType(event_type), payload=payload or {}, **kwargs)

    return record


def kinds() -> list[tuple[str, str]]:
    return list(Alert.objects.order_by("id").values_list("kind", "scope"))
