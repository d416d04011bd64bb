"""Execution services in-process (no worker): the attempt logic, breaker in the order path, sweeper selection.

The breaker and the venue memory use their demo-mode file stores here (REDIS_URL unset), so these run
without Redis; the worker tests cover the same paths on Redis with real processes.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D  # noqa: N817 - tables read better short

import pytest
from django.utils import timezone

from audit.models import EventType
from orders import breaker, execution, venue
from orders.models import Fill, Order, OrderStatus
from risk.models import Position, RiskState
from tests.execution.conftest import events_of, submit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_stores(settings, tmp_path, monkeypatch):
    settings.REDIS_URL, settings.VAR_DIR = "", str(tmp_path)
    settings.VENUE_LATENCY_MS, settings.VENUE_MAX_SLIPPAGE, settings.VENUE_SCRIPT = 0, "0", ""
    settings.VENUE_SUCCESS_PROBABILITY = 1.0
    venue.venue.cache_clear()
    queued: list[tuple] = []
    monkeypatch.setattr("orders.submission.enqueue", lambda *a, **k: True)
    monkeypatch.setattr(execution, "enqueue", lambda order_id, corr=None, **kw: queued.append((order_id, kw)) or True)
    yield queued
    venue.venue.cache_clear()


def use_venue(settings, **values):
    for name, value in values.items():
        setattr(settings, name, value)
    venue.venue.cache_clear()


def test_order_execute_when_venue_fills_then_executed_once_and_redelivery_skipped(trader, local_stores):
    order = submit(trader)
    assert execution.order_execute(order_id=order.pk).status == "EXECUTED"
    assert execution.order_execute(order_id=order.pk).status == "SKIPPED"
    assert Fill.objects.filter(order=order).count() == 1 and local_stores == []
    assert Order.objects.get(pk=order.pk).status == OrderStatus.EXECUTED


def test_execution_complete_when_called_twice_then_one_fill_and_one_event(trader):
    order = submit(trader)
    assert execution.execution_start(order_id=order.pk) is not None
    fill = venue.Execution("SIM", "X-1", D(10), D("100.5"))
    execution.execution_complete(order_id=order.pk, fill=fill, attempt=1)
    again = execution.execution_complete(order_id=order.pk, fill=fill, attempt=1)
    assert again.status == OrderStatus.EXECUTED
    assert Fill.objects.count() == 1 and len(events_of(order, EventType.EXECUTION_COMPLETED)) == 1
    position = Position.objects.get(scope="firm", symbol="AAPL")
    assert (position.quantity, position.average_price, position.open_buy_quantity) == (D(10), D("100.5"), D(0))
    assert RiskState.objects.get().executed_volume == D(1000)  # at the order price, as reserved


def test_order_execute_when_transient_failure_then_back_to_approved_with_backoff_queued(trader, settings, local_stores):
    use_venue(settings, VENUE_SCRIPT="fail,timeout", VENUE_TIMEOUT_SECONDS=0.01)
    order = submit(trader)
    first = execution.order_execute(order_id=order.pk)
    assert (first.status, first.retry_in, first.attempt) == ("RETRY", 1.0, 1)
    order.refresh_from_db()
    assert (order.status, order.retry_count) == (OrderStatus.APPROVED, 1)
    second = execution.order_execute(order_id=order.pk)
    assert (second.status, second.retry_in, second.reason) == ("RETRY", 2.0, "Venue did not answer within 0.01s")
    assert [kw["countdown"] for _, kw in local_stores] == [1.0, 2.0]
    assert execution.order_execute(order_id=order.pk).status == "EXECUTED"


def test_order_execute_when_breaker_open_then_attempts_fail_fast_and_order_fails(trader, settings, local_stores):
    for _ in range(settings.BREAKER_FAILURE_THRESHOLD):
        breaker.breaker_record(permit=breaker.breaker_acquire(), success=False)
    order = submit(trader)
    outcomes = [execution.order_execute(order_id=order.pk).status for _ in range(3)]
    assert outcomes == ["RETRY", "RETRY", "FAILED"]
    order.refresh_from_db()
    assert (order.status, order.rejection_reason, order.retry_count) == (OrderStatus.FAILED, "Circuit breaker open", 3)
    assert venue.venue().memory.calls() == 0
    assert RiskState.objects.get().open_volume == 0
    assert len(events_of(order, EventType.EXECUTION_FAILED)) == 1


def test_execution_fail_when_order_open_then_failed_released_and_when_final_then_none(trader):
    order = submit(trader, quantity="3", price="20")
    failed = execution.execution_fail(order_id=order.pk, reason="operator gave up")
    assert failed.status == OrderStatus.FAILED and RiskState.objects.get().open_volume == 0
    assert events_of(order, EventType.EXECUTION_FAILED)[0].payload["reason"] == "operator gave up"
    assert execution.execution_fail(order_id=order.pk, reason="again") is None
    assert len(events_of(order, EventType.EXECUTION_FAILED)) == 1


def test_sweeper_when_orders_stuck_then_requeued_once_and_fresh_or_final_left_alone(
    trader, settings, local_stores, django_capture_on_commit_callbacks
):
    settings.ORDER_STUCK_AFTER_SECONDS = 60
    old = timezone.now() - timedelta(seconds=120)
    approved, executing, fresh, done = (submit(trader, quantity=str(n)) for n in (1, 2, 3, 4))
    execution.execution_start(order_id=executing.pk)
    execution.order_execute(order_id=done.pk)
    Order.objects.filter(pk__in=[approved.pk, executing.pk, done.pk]).update(updated_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        assert sorted(execution.orders_sweep()) == sorted([approved.pk, executing.pk])
    assert sorted((str(pk), kw["resume"]) for pk, kw in local_stores) == sorted(
        [(str(approved.pk), False), (str(executing.pk), True)]
    )
    assert execution.orders_sweep() == []  # their clocks restarted
    assert [e.payload["status"] for e in events_of(executing, EventType.ORDER_REQUEUED)] == ["EXECUTING"]
    assert execution.order_execute(order_id=executing.pk, resume=True).status == "EXECUTED"
