"""Timestamps are UTC with microseconds from one clock (the one events_record reads), every trail is in
sequence order = causal order, and no code path outside the recording service writes or deletes events."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import transaction

from audit import integrity, selectors
from audit.models import Event, EventType
from audit.services import event_record
from orders import execution
from orders.submission import OrderRequest, order_submit
from orders.venue import Execution

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
CAUSAL = [
    EventType.ORDER_CREATED,
    EventType.RISK_CHECK_STARTED,
    EventType.RISK_CHECK_PASSED,
    EventType.EXECUTION_STARTED,
    EventType.EXECUTION_ATTEMPT_FAILED,
    EventType.EXECUTION_STARTED,
    EventType.EXECUTION_COMPLETED,
]


def test_order_trail_is_in_causal_order_with_utc_microsecond_times(
    trader: Any, compliance: Any, client_for: Any
) -> None:
    order, _ = order_submit(
        user=trader,
        request=OrderRequest(symbol="AAPL", side="BUY", quantity=Decimal("3"), price=Decimal("10")),
        correlation_id=uuid.uuid4(),
    )
    execution.execution_start(order_id=order.pk)
    execution.execution_attempt_failed(order_id=order.pk, reason="venue unavailable", attempt=1, retry=True)
    execution.execution_start(order_id=order.pk)
    fill = Execution(venue="SIMULATED", venue_execution_id=uuid.uuid4().hex, quantity=Decimal("3"), price=Decimal("10"))
    execution.execution_complete(order_id=order.pk, fill=fill, attempt=2)

    trail = selectors.trail_by_order(order.pk)
    assert [e.event_type for e in trail] == CAUSAL
    assert [e.sequence for e in trail] == sorted(e.sequence for e in trail)
    assert all(a.timestamp <= b.timestamp for a, b in zip(trail, trail[1:], strict=False))
    assert all(e.timestamp.utcoffset() == dt.timedelta(0) for e in trail)
    assert {e.correlation_id for e in trail} == {order.correlation_id}
    # Causation inside the decision: created -> started -> passed.
    assert trail[1].causation_id == trail[0].event_id and trail[2].causation_id == trail[1].event_id
    for event in trail:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", integrity.timestamp_text(event.timestamp))

    api = client_for(compliance).get(f"/api/v1/audit/order/{order.pk}/trail").json()
    assert [e["event_type"] for e in api["events"]] == CAUSAL
    by_correlation = client_for(compliance).get(f"/api/v1/audit/correlation/{order.correlation_id}").json()
    assert [e["event_type"] for e in by_correlation["events"]] == CAUSAL


def test_microseconds_survive_the_database(db: Any) -> None:
    moment = dt.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    with time_machine.travel(moment, tick=False), transaction.atomic():
        event = event_record(event_type=EventType.LOGIN_FAILED, payload={})
    stored = Event.objects.get(pk=event.pk).timestamp
    assert stored == moment and stored.microsecond == 123456


def test_one_batch_has_one_time(db: Any) -> None:
    from audit.services import EventSpec, events_record

    with transaction.atomic():
        events = events_record(specs=[EventSpec(EventType.LOGIN_FAILED), EventSpec(EventType.LOGIN_FAILED)])
    assert events[0].timestamp == events[1].timestamp and events[0].sequence < events[1].sequence


def _python_sources() -> list[Path]:
    skip = {".venv", "migrations", "tests", "var", "bench", "node_modules"}
    return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]


def test_events_are_created_only_by_the_recording_service() -> None:
    """The one clock: events_record stamps every event; nothing else constructs or bulk-creates Event rows
    (seed_events fills benchmark databases only and refuses others)."""
    allowed = {ROOT / "audit" / "services.py", ROOT / "audit" / "management" / "commands" / "seed_events.py"}
    pattern = re.compile(r"(?<!class )\bEvent\(|Event\.objects\.(create|bulk_create|get_or_create|update_or_create)\b")
    offenders = [
        str(p.relative_to(ROOT)) for p in _python_sources() if p not in allowed and pattern.search(p.read_text())
    ]
    assert offenders == []


def test_no_code_path_updates_or_deletes_events() -> None:
    pattern = re.compile(
        r"(Event|EventHash|Seal)\.objects[^\n]*\.(delete|update)\(|"
        r"(DELETE\s+FROM|TRUNCATE|UPDATE)\s+\"?audit_(event|eventhash|seal)\b",
        re.IGNORECASE,
    )
    offenders = [str(p.relative_to(ROOT)) for p in _python_sources() if pattern.search(p.read_text())]
    assert offenders == []
