"""Order submission and cancel services on the real database: atomic decision + events + reservation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import Event, EventType
from orders import services as order_services
from orders import submission
from orders.execution import enqueue
from orders.models import Order, OrderStatus
from orders.services import OrderNotCancellable, order_cancel
from orders.submission import ClientOrderIdReused, DuplicateOrder
from risk import checks
from risk.models import Position, RiskState
from tests.orders.conftest import written, written_but_refusal
from tests.support.market import price

pytestmark = pytest.mark.django_db


def events_of(order: Order) -> list[Event]:
    return list(Event.objects.filter(order_id=order.pk).order_by("sequence"))


def test_submit_when_checks_pass_then_order_events_and_reservation_are_written_together(trader, submit) -> None:
    order, decision = submit(trader, quantity=100, price="150.25")
    assert decision.approved
    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED
    assert (order.symbol, order.side, order.quantity, order.price) == ("AAPL", "BUY", Decimal(100), Decimal("150.25"))
    events = events_of(order)
    assert [e.event_type for e in events] == ["ORDER_CREATED", "RISK_CHECK_STARTED", "RISK_CHECK_PASSED"]
    assert {e.correlation_id for e in events} == {order.correlation_id}
    assert events[1].causation_id == events[0].event_id and events[2].causation_id == events[1].event_id
    assert {e.actor_username for e in events} == {"trader1"}
    assert events[0].payload["quantity"] == "100" and events[0].payload["price"] == "150.25"
    assert events[2].payload["projected"]["position"] == "15025.00"
    position = Position.objects.get(scope="firm", symbol="AAPL")
    assert (position.quantity, position.open_buy_quantity, position.open_buy_notional) == (0, 100, Decimal("15025"))
    assert RiskState.objects.get().open_volume == Decimal("15025")


def test_submit_when_limit_violated_then_rejected_without_reservation(trader, submit) -> None:
    price("AAPL", 100)  # the market at the order's price: the seed's arithmetic
    order, decision = submit(trader, quantity=110000, price=100)
    assert not decision.approved
    order.refresh_from_db()
    assert order.status == OrderStatus.REJECTED
    assert order.rejection_reason == "Risk violations: POSITION_LIMIT, DAILY_VOLUME_LIMIT, NET_EXPOSURE_LIMIT"
    events = events_of(order)
    assert [e.event_type for e in events] == ["ORDER_CREATED", "RISK_CHECK_STARTED", "RISK_CHECK_FAILED"]
    violations = events[2].payload["violations"]
    assert [v["code"] for v in violations] == ["POSITION_LIMIT", "DAILY_VOLUME_LIMIT", "NET_EXPOSURE_LIMIT"]
    assert {v["scope"] for v in violations} == {"firm"}  # explained: the firm's limits were the ones breached
    assert events[2].payload["kill_switch"] is False
    assert not Position.objects.exists()
    assert RiskState.objects.get().open_volume == 0


def test_submit_when_open_orders_fill_the_limit_then_next_order_is_rejected(trader, submit) -> None:
    price("AAPL", 100)
    first, d1 = submit(trader, quantity=6000, price=100, client_order_id="a")
    second, d2 = submit(trader, quantity=4000, price=100, client_order_id="b")
    third, d3 = submit(trader, quantity=1, price=100, client_order_id="c")
    assert (d1.approved, d2.approved, d3.approved) == (True, True, False)
    assert d3.violations == (checks.Violation.POSITION_LIMIT,)
    assert Position.objects.get(scope="firm", symbol="AAPL").open_buy_quantity == 10000


def test_submit_when_kill_switch_active_then_rejected_with_only_the_kill_switch_checked(
    trader, risk_manager, submit
) -> None:
    order_services.kill_switch_set(actor=risk_manager, enabled=True, reason="test")
    order, decision = submit(trader)
    assert decision.kill_switch and order.status == OrderStatus.REJECTED
    assert order.rejection_reason == "Kill switch is active - all trading halted"
    started, failed = events_of(order)[1:]
    assert started.payload == {"checks": ["KILL_SWITCH"]}
    assert failed.payload["kill_switch"] is True
    assert failed.payload["violations"] == [
        {"code": "TRADING_HALTED", "scope": "firm", "limit": "HALTED", "projected": None}
    ]


def test_submit_when_approved_then_execution_is_queued_only_on_commit(
    trader, submit, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order, _ = submit(trader)
    queued = [c for c in callbacks if getattr(c, "func", None) is enqueue]
    assert len(queued) == 1
    assert queued[0].args == (order.pk, order.correlation_id)


def test_submit_when_rejected_then_nothing_is_queued(trader, submit, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit(trader, quantity=10**6)
    assert not [c for c in callbacks if getattr(c, "func", None) is enqueue]


def test_submit_when_outer_transaction_rolls_back_then_execution_is_never_queued(
    trader, submit, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                submit(trader)
                raise RuntimeError("rolled back after the decision")
    assert callbacks == []
    assert not Order.objects.exists()


def test_submit_when_event_write_fails_then_no_order_and_no_reservation(trader, submit, monkeypatch) -> None:
    before = written()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("event store refused the insert")

    monkeypatch.setattr(submission, "events_record_groups", broken)
    with pytest.raises(RuntimeError):
        submit(trader)
    assert written() == before


# --- duplicates ----------------------------------------------------------------------------------------


def test_submit_when_same_execution_key_then_duplicate_and_only_its_refusal_written(trader, submit) -> None:
    submit(trader, client_order_id="X-1")
    before = written()
    with pytest.raises(DuplicateOrder) as info:
        submit(trader, client_order_id="X-1")
    assert info.value.status_code == 409
    written_but_refusal(before, "duplicate_order", "X-1")


def test_submit_when_same_key_with_numbers_written_differently_then_duplicate(trader, submit) -> None:
    submit(trader, client_order_id="X-1", quantity="100", price="150.25")
    with pytest.raises(DuplicateOrder):
        submit(trader, client_order_id="X-1", quantity="100.000", price="150.2500")


def test_submit_when_same_key_even_long_after_then_still_duplicate(trader, submit) -> None:
    first, _ = submit(trader, client_order_id="X-1")
    Order.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=30))
    with pytest.raises(DuplicateOrder):
        submit(trader, client_order_id="X-1")


@pytest.mark.parametrize(
    "change",
    [
        {"client_order_id": "X-2"},
        {"client_order_id": ...},  # no key at all is not the keyed order
    ],
)
def test_submit_when_the_client_order_id_differs_then_not_a_duplicate(trader, submit, change) -> None:
    submit(trader, client_order_id="X-1")
    order, decision = submit(trader, **{"client_order_id": "X-1", **change})
    assert decision.approved


@pytest.mark.parametrize("change", [{"quantity": 101}, {"price": "150.26"}, {"side": "SELL"}, {"symbol": "MSFT"}])
def test_submit_when_a_client_order_id_is_reused_for_another_order_then_409_and_only_its_refusal_written(
    trader, submit, change
) -> None:
    first, _ = submit(trader, client_order_id="X-1")
    before = written()
    with pytest.raises(ClientOrderIdReused) as info:
        submit(trader, **{"client_order_id": "X-1", **change})
    assert info.value.status_code == 409 and info.value.details["order_id"] == str(first.pk)
    written_but_refusal(before, "client_order_id_reused", "X-1")


def test_submit_when_another_user_uses_the_same_key_then_not_a_duplicate(trader, trader2, submit) -> None:
    submit(trader, client_order_id="X-1")
    _, decision = submit(trader2, client_order_id="X-1")
    assert decision.approved


def test_submit_when_keyless_identical_order_inside_window_then_duplicate(trader, submit, settings) -> None:
    settings.ORDER_DUPLICATE_WINDOW_SECONDS = 5
    submit(trader)
    before = written()
    with pytest.raises(DuplicateOrder):
        submit(trader)
    written_but_refusal(before, "duplicate_order")


def test_submit_when_keyless_identical_order_after_window_then_accepted(trader, submit, settings) -> None:
    settings.ORDER_DUPLICATE_WINDOW_SECONDS = 5
    first, _ = submit(trader)
    Order.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=6))
    second, decision = submit(trader)
    assert decision.approved and second.pk != first.pk


def test_submit_when_window_is_zero_then_keyless_identical_orders_are_all_accepted(trader, submit, settings) -> None:
    settings.ORDER_DUPLICATE_WINDOW_SECONDS = 0
    submit(trader)
    _, decision = submit(trader)
    assert decision.approved
    assert Order.objects.count() == 2


# --- cancel --------------------------------------------------------------------------------------------


def test_cancel_when_approved_then_cancelled_reservation_released_and_recorded(trader, submit) -> None:
    order, _ = submit(trader, symbol="AAA", quantity=10, price=10)
    submit(trader, symbol="BBB", quantity=1, price=5)
    cancelled = order_cancel(actor=trader, order_id=order.pk, reason="changed my mind")
    assert cancelled.status == OrderStatus.CANCELLED and cancelled.rejection_reason == "changed my mind"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    position = Position.objects.get(scope="firm", symbol="AAA")
    assert (position.open_buy_quantity, position.open_buy_notional) == (0, 0)
    assert RiskState.objects.get().open_volume == Decimal(5)
    event = events_of(order)[-1]
    assert event.event_type == EventType.ORDER_CANCELLED
    assert event.actor_username == "trader1" and event.correlation_id == order.correlation_id
    assert event.payload == {"reason": "changed my mind", "by": "trader1", "leaves_quantity": "10.00000000"}


@pytest.mark.parametrize("status", ["EXECUTING", "EXECUTED", "FAILED", "REJECTED", "CANCELLED"])
def test_cancel_when_too_late_then_conflict_and_nothing_changed(trader, submit, status) -> None:
    order, _ = submit(trader)
    Order.objects.filter(pk=order.pk).update(status=status)
    before = written()
    with pytest.raises(OrderNotCancellable) as info:
        order_cancel(actor=trader, order_id=order.pk)
    assert info.value.status_code == 409
    assert status in info.value.message
    assert written() == before


# --- the kill switch's cancels -------------------------------------------------------------------------


def test_kill_switch_when_turned_on_then_every_approved_order_is_cancelled_by_its_event(
    trader, trader2, risk_manager, submit
) -> None:
    a, _ = submit(trader, symbol="AAA", quantity=10, price=10)
    b, _ = submit(trader2, symbol="BBB", side="SELL", quantity=20, price=10)
    running, _ = submit(trader, symbol="CCC", quantity=3, price=10)
    rejected, _ = submit(trader, symbol="DDD", quantity=10**6, price=10)
    Order.objects.filter(pk=running.pk).update(status=OrderStatus.EXECUTING)

    state, cancelled = order_services.kill_switch_set(actor=risk_manager, enabled=True, reason="market halt")

    assert state.kill_switch_enabled and sorted(cancelled) == sorted([a.pk, b.pk])
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses[a.pk] == statuses[b.pk] == OrderStatus.CANCELLED
    assert statuses[running.pk] == OrderStatus.EXECUTING, "an order at the venue is left to finish"
    assert statuses[rejected.pk] == OrderStatus.REJECTED
    switch = Event.objects.get(event_type=EventType.KILL_SWITCH_ACTIVATED)
    assert switch.actor_username == "risk1"
    assert switch.payload == {"enabled": True, "was_enabled": False, "reason": "market halt"}
    cancels = Event.objects.filter(event_type=EventType.ORDER_CANCELLED)
    assert sorted(e.order_id for e in cancels) == sorted([a.pk, b.pk])
    for event in cancels:
        assert event.causation_id == switch.event_id
        assert event.actor_username == "risk1"
        assert {k: v for k, v in event.payload.items() if k != "leaves_quantity"} == {
            "reason": "Kill switch activated: market halt",
            "by": "kill_switch",
        }
    # only the executing order still holds a reservation
    assert RiskState.objects.get().open_volume == Decimal(30)
    assert Position.objects.get(scope="firm", symbol="BBB").open_sell_quantity == 0


def test_kill_switch_when_on_then_new_orders_rejected_and_when_off_then_approved_again(
    trader, risk_manager, submit
) -> None:
    order_services.kill_switch_set(actor=risk_manager, enabled=True)
    _, during = submit(trader, client_order_id="1")
    order_services.kill_switch_set(actor=risk_manager, enabled=False, reason="all clear")
    _, after = submit(trader, client_order_id="2")
    assert during.kill_switch and after.approved
    off = Event.objects.get(event_type=EventType.KILL_SWITCH_DEACTIVATED)
    assert off.payload == {"enabled": False, "was_enabled": True, "reason": "all clear"}
    state = RiskState.objects.get()
    assert not state.kill_switch_enabled and state.kill_switch_changed_by == risk_manager
