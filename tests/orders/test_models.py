"""The order state machine (orders/models.py): every legal transition works, every other one raises."""

from __future__ import annotations

import itertools

import pytest

from orders.models import FINAL_STATUSES, OPEN_STATUSES, TRANSITIONS, IllegalTransition, Order, OrderStatus

LEGAL = {
    ("PENDING", "RISK_CHECK"),
    ("RISK_CHECK", "APPROVED"),
    ("RISK_CHECK", "REJECTED"),
    ("APPROVED", "EXECUTING"),
    ("APPROVED", "CANCELLED"),
    ("APPROVED", "FAILED"),
    ("APPROVED", "EXPIRED"),  # a DAY order still waiting when its UTC day ends (also one resting at the venue)
    ("EXECUTING", "EXECUTED"),
    ("EXECUTING", "FAILED"),
    ("EXECUTING", "APPROVED"),  # a retry after a transient venue failure, the sweeper's re-queue, or resting
    # the lifecycle: a resting order traded against by another, partial fills, IOC/FOK/market remainders
    ("APPROVED", "PARTIALLY_FILLED"),
    ("APPROVED", "EXECUTED"),
    ("EXECUTING", "PARTIALLY_FILLED"),
    ("EXECUTING", "CANCELLED"),
    ("PARTIALLY_FILLED", "PARTIALLY_FILLED"),
    ("PARTIALLY_FILLED", "EXECUTED"),
    ("PARTIALLY_FILLED", "CANCELLED"),
    ("PARTIALLY_FILLED", "EXPIRED"),
}
ALL_PAIRS = list(itertools.product(OrderStatus.values, OrderStatus.values))


def test_transition_table_is_exactly_the_documented_one() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == LEGAL
    assert set(TRANSITIONS) == set(OrderStatus.values)


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_order_when_transition_is_legal_then_status_changes(current: str, target: str) -> None:
    order = Order(status=current)
    before = order.updated_at
    order.transition(target)
    assert order.status == target
    assert order.updated_at >= before


@pytest.mark.parametrize(("current", "target"), [p for p in ALL_PAIRS if p not in LEGAL])
def test_order_when_transition_is_illegal_then_raises_and_status_is_kept(current: str, target: str) -> None:
    order = Order(status=current)
    with pytest.raises(IllegalTransition) as info:
        order.transition(target)
    assert order.status == current
    assert (info.value.current, info.value.target) == (current, target)
    assert f"from {current} to {target}" in str(info.value)


def test_final_statuses_have_no_way_out_and_open_statuses_are_the_live_ones() -> None:
    assert FINAL_STATUSES == {"REJECTED", "EXECUTED", "FAILED", "CANCELLED", "EXPIRED"}
    assert OPEN_STATUSES == {"APPROVED", "EXECUTING", "PARTIALLY_FILLED"}
    assert Order(status="APPROVED").is_open and not Order(status="CANCELLED").is_open
