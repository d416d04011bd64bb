"""Replay equals live: a generated flow of submissions, rejections, fills, failures, cancels, kill switch and
limit changes (the real services, in one database) is rebuilt from the events alone and compared."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import replay
from orders import execution
from orders import services as order_services
from orders.models import Order, OrderStatus
from orders.services import OrderNotCancellable, order_cancel
from orders.submission import DuplicateOrder, OrderRequest, order_submit
from orders.venue import Execution
from risk import services as risk_services
from risk.models import Position

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

START = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
SYMBOLS = ["AAPL", "MSFT", "EURUSD"]
QUANTITIES = [Decimal("1"), Decimal("7"), Decimal("10.5"), Decimal("250"), Decimal("0.12345678")]
PRICES = [Decimal("0.5"), Decimal("99.95"), Decimal("150.25"), Decimal("1234.56789")]
SLIPS = [Decimal("-0.001"), Decimal("0"), Decimal("0.0007")]

submit = st.tuples(
    st.just("submit"),
    st.sampled_from(SYMBOLS),
    st.sampled_from(["BUY", "SELL"]),
    st.sampled_from(QUANTITIES),
    st.sampled_from(PRICES),
)
on_order = st.tuples(
    st.sampled_from(["fill", "fill", "retry_fail", "final_fail", "fail", "cancel", "start"]),
    st.integers(0, 50),
    st.sampled_from(SLIPS),
)
control = st.one_of(
    st.tuples(st.just("kill"), st.booleans()),
    st.tuples(
        st.just("limits"),
        st.sampled_from(["max_position_size", "max_daily_volume", "max_net_exposure", "max_gross_exposure"]),
        st.sampled_from([Decimal("2000"), Decimal("50000"), Decimal("400000"), Decimal("10000000")]),
    ),
    st.tuples(st.just("next_day")),
)
flows = st.builds(
    lambda opening, rest: opening + rest,
    st.lists(submit, min_size=1, max_size=4),
    st.lists(st.one_of(submit, on_order, on_order, on_order, control), max_size=40),
)


def _pick(index: int) -> Order | None:
    orders = list(Order.objects.order_by("created_at", "pk"))
    return orders[index % len(orders)] if orders else None


def _step(action: tuple[Any, ...], trader: Any, manager: Any) -> None:
    kind = action[0]
    if kind == "submit":
        _, symbol, side, quantity, price = action
        try:
            order_submit(user=trader, request=OrderRequest(symbol=symbol, side=side, quantity=quantity, price=price))
        except DuplicateOrder:
            pass
    elif kind == "kill":
        order_services.kill_switch_set(actor=manager, enabled=action[1], reason="drill")
    elif kind == "limits":
        risk_services.risk_limits_update(actor=manager, reason="drill", **{action[1]: action[2]})
    elif kind in {"fill", "retry_fail", "final_fail", "fail", "cancel", "start"}:
        order = _pick(action[1])
        if order is None:
            return
        if kind == "cancel":
            try:
                order_cancel(actor=manager, order_id=order.pk, reason="drill")
            except OrderNotCancellable:
                pass
            return
        if kind == "fail":
            execution.execution_fail(order_id=order.pk, reason="drill")
            return
        started = execution.execution_start(order_id=order.pk)
        if started is None or kind == "start":
            return
        attempt = started.retry_count + 1
        if kind == "fill":
            price = (started.price * (1 + action[2])).quantize(Decimal("0.00000001"))
            fill = Execution(
                venue="SIMULATED", venue_execution_id=uuid.uuid4().hex, quantity=started.quantity, price=price
            )
            execution.execution_complete(order_id=order.pk, fill=fill, attempt=attempt)
        else:
            execution.execution_attempt_failed(
                order_id=order.pk, reason="venue unavailable", attempt=attempt, retry=kind == "retry_fail"
            )


@pytest.mark.slow
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(flow=flows)
def test_replay_always_equals_live(flow: list[tuple[Any, ...]], trader: Any, risk_manager: Any) -> None:
    with transaction.atomic():
        now = START
        for action in flow:
            if action[0] == "next_day":
                now += dt.timedelta(days=1)
                continue
            with time_machine.travel(now, tick=False):
                _step(action, trader, risk_manager)
            now += dt.timedelta(seconds=7)  # past the duplicate window
        state = replay.rebuild()
        assert replay.differences(state) == []
        transaction.set_rollback(True)


def test_replay_follows_every_order_path(trader: Any, risk_manager: Any) -> None:
    """One deterministic walk through each path, so each event type is exercised every run."""
    flow = [
        ("submit", "AAPL", "BUY", Decimal("10"), Decimal("100")),  # 0: filled after a retried attempt
        ("retry_fail", 0, Decimal("0")),
        ("fill", 0, Decimal("0.0007")),
        ("submit", "AAPL", "SELL", Decimal("3"), Decimal("101")),  # 1: left executing
        ("start", 1, Decimal("0")),
        ("submit", "MSFT", "BUY", Decimal("7"), Decimal("99.95")),  # 2: final attempt fails
        ("final_fail", 2, Decimal("0")),
        ("submit", "MSFT", "SELL", Decimal("1"), Decimal("99.95")),  # 3: failed while approved
        ("fail", 3, Decimal("0")),
        ("submit", "EURUSD", "BUY", Decimal("250"), Decimal("0.5")),  # 4: cancelled
        ("cancel", 4, Decimal("0")),
        ("submit", "EURUSD", "SELL", Decimal("2"), Decimal("0.5")),  # 5: cancelled by the kill switch
        ("kill", True),
        ("submit", "EURUSD", "SELL", Decimal("3"), Decimal("0.5")),  # 6: rejected by the switch
        ("kill", False),
        ("limits", "max_position_size", Decimal("2000")),
        ("submit", "AAPL", "BUY", Decimal("250"), Decimal("150.25")),  # 7: rejected by the limit
        ("submit", "AAPL", "SELL", Decimal("1"), Decimal("0.5")),  # 8: waiting for its second attempt
        ("retry_fail", 8, Decimal("0")),
    ]
    now = START
    for action in flow:
        with time_machine.travel(now, tick=False):
            _step(action, trader, risk_manager)
        now += dt.timedelta(seconds=7)
    statuses = [o.status for o in Order.objects.order_by("created_at")]
    assert statuses == [
        "EXECUTED",
        "EXECUTING",
        "FAILED",
        "FAILED",
        "CANCELLED",
        "CANCELLED",
        "REJECTED",
        "REJECTED",
        "APPROVED",
    ]
    state = replay.rebuild()
    assert [state.orders[o.pk].status for o in Order.objects.order_by("created_at")] == statuses
    assert state.open_volume == Decimal("303.5") and state.anomalies == []
    assert replay.differences(state) == []


def test_replay_sees_a_day_change_and_volume(trader: Any, risk_manager: Any) -> None:
    flow = [
        ("submit", "AAPL", "BUY", Decimal("10"), Decimal("100")),
        ("fill", 0, Decimal("0")),
        ("next_day",),
        ("submit", "AAPL", "SELL", Decimal("4"), Decimal("110")),
        ("fill", 1, Decimal("0.0007")),
    ]
    now = START
    for action in flow:
        if action[0] == "next_day":
            now += dt.timedelta(days=1)
            continue
        with time_machine.travel(now, tick=False):
            _step(action, trader, risk_manager)
        now += dt.timedelta(seconds=7)
    state = replay.rebuild()
    assert state.trading_day == (START + dt.timedelta(days=1)).date()
    assert state.executed_volume == Decimal("440")
    book = state.books["AAPL"]
    assert book.position.quantity == Decimal("6") and book.position.realized_pnl == Decimal("40.30800000")
    assert replay.differences(state) == []
    assert Order.objects.filter(status=OrderStatus.EXECUTED).count() == 2


def test_replay_events_verify_reports_a_live_table_that_drifted(trader: Any, risk_manager: Any) -> None:
    with time_machine.travel(START, tick=False):
        _step(("submit", "MSFT", "BUY", Decimal("5"), Decimal("99.95")), trader, risk_manager)
        _step(("fill", 0, Decimal("0")), trader, risk_manager)
        _step(("submit", "MSFT", "BUY", Decimal("7"), Decimal("99.95")), trader, risk_manager)
    call_command("replay_events", "--verify")
    Position.objects.filter(symbol="MSFT").update(quantity=F("quantity") + 1)
    Order.objects.filter(status=OrderStatus.APPROVED).update(status=OrderStatus.CANCELLED)
    with pytest.raises(CommandError, match="differs from the live tables in 2 places"):
        call_command("replay_events", "--verify")


def test_replay_events_prints_the_rebuilt_state(trader: Any, risk_manager: Any, capsys: Any) -> None:
    with time_machine.travel(START, tick=False):
        _step(("submit", "EURUSD", "SELL", Decimal("10.5"), Decimal("0.5")), trader, risk_manager)
    call_command("replay_events", "--orders")
    out = capsys.readouterr().out
    assert "position EURUSD: quantity 0" in out and "open_sell_quantity 10.5" in out
    assert "orders: APPROVED 1" in out
