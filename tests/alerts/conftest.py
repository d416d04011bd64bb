"""Fixtures of the alerts tests: an evaluator whose cursor starts at the trail's end, and causes made real."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from alerts.models import Alert
from alerts.services import Evaluator
from audit.models import EventType
from audit.services import event_record


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
