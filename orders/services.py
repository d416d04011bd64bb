"""Order use-cases that write, besides submission (orders.submission): cancels, and halting trading.

Halting trading spans two domains, the risk state (risk.services) and the open orders (here); the action
lives in this, the higher one: the kill switch is set and the open orders cancelled in one transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from accounts.models import User
from audit.models import EventType
from audit.services import EventSpec, events_record
from core.exceptions import Conflict
from orders.models import Order, OrderStatus
from orders.selectors import scope_orders
from risk import services as risk_services
from risk import store
from risk.access import scope_require
from risk.models import RiskLimits, RiskState, TradingState
from risk.scopes import FIRM, Scope


class OrderNotCancellable(Conflict):
    code = "too_late_to_cancel"


@transaction.atomic
def order_cancel(*, actor: User, order_id: uuid.UUID, reason: str = "") -> Order:
    """Cancel an order that has not started executing (409 otherwise) and give back its reservation."""
    state = store.lock()
    # of=("self",): lock the order, not the joined user row as well
    order = Order.objects.select_for_update(of=("self",)).select_related("user").get(pk=order_id)
    if order.status != OrderStatus.APPROVED:
        raise OrderNotCancellable(f"Order {order.pk} is {order.status}: too late to cancel")
    order.transition(OrderStatus.CANCELLED)
    order.rejection_reason = reason[:500] or f"Cancelled by {actor.username}"
    order.save(update_fields=["status", "rejection_reason", "updated_at"])
    store.release(state=state, reservation=store.Reservation.of(order))
    events_record(
        specs=[
            EventSpec(
                EventType.ORDER_CANCELLED,
                {"reason": order.rejection_reason, "by": actor.username},
                order_id=order.pk,
                symbol=order.symbol,
            )
        ],
        actor=actor,
        correlation_id=order.correlation_id,
    )
    return order


@transaction.atomic
def kill_switch_set(*, actor: User | None, enabled: bool, reason: str = "") -> tuple[RiskState, list[uuid.UUID]]:
    """Turn the kill switch on or off. On: new orders are refused at once (the switch is read under the
    same lock as every decision) and every open order that has not started executing is cancelled,
    each cancellation caused by the switch's event. Returns the state and the cancelled order ids."""
    store.lock()
    # The open orders are locked before the switch's event is written: the first event of a transaction
    # takes the event counter (audit/migrations/0006), the last lock in the lock order, and a transaction
    # holding it must not wait for an order row that an execution (which writes events too) holds.
    orders = (
        list(Order.objects.select_for_update().filter(status=OrderStatus.APPROVED).order_by("pk")) if enabled else []
    )
    state, event = risk_services.kill_switch_state_set(actor=actor, enabled=enabled, reason=reason)
    reason = f"Kill switch activated: {reason}".strip(": ")
    return state, _orders_cancel(orders, state=state, actor=actor, reason=reason, causation_id=event.event_id)


@transaction.atomic
def scope_state_set(*, actor: User, scope: Scope, state: str, reason: str) -> tuple[str, list[uuid.UUID]]:
    """Set a scope's trading state (ACTIVE, REDUCING, HALTED) under the risk lock. HALTED cancels the scope's
    open orders that have not started executing, in this transaction, each caused by the state's event (the
    firm's: v1's KILL_SWITCH_ACTIVATED). The firm scope is the v1 kill switch too. Answers the previous state
    and the cancelled order ids."""
    scope_require(scope)
    firm = store.lock()
    # The open orders are locked before the event is written (see kill_switch_set).
    orders = (
        list(scope_orders(scope).select_for_update(of=("self",)).filter(status=OrderStatus.APPROVED).order_by("pk"))
        if state == TradingState.HALTED
        else []
    )
    previous, event = risk_services.trading_state_write(actor=actor, scope=scope, state=state, reason=reason)
    cancel_reason = f"Trading halted ({scope}): {reason}".strip(": ")
    by = "kill_switch" if scope == FIRM else "trading_state"
    cancelled = _orders_cancel(
        orders, state=firm, actor=actor, reason=cancel_reason, causation_id=event.event_id, by=by
    )
    return previous, cancelled


@transaction.atomic
def controls_update(
    *, actor: User | None, kill_switch_enabled: bool | None = None, reason: str = "", **changes: Any
) -> RiskLimits:
    """Change firm limits and, if asked, the kill switch together: both or neither (PUT/PATCH /risk/limits).

    The limit values are validated before anything changes, so a bad value cannot leave the kill switch
    switched while the answer says 400."""
    risk_services.limits_validate(changes)
    state = store.lock()
    if kill_switch_enabled is not None and kill_switch_enabled != state.kill_switch_enabled:
        kill_switch_set(actor=actor, enabled=kill_switch_enabled, reason=reason or "changed with the limits")
    if changes:
        return risk_services.risk_limits_update(actor=actor, reason=reason, **changes)
    return store.firm_limits()


def _orders_cancel(
    orders: list[Order],
    *,
    state: RiskState,
    actor: User | None,
    reason: str,
    causation_id: uuid.UUID,
    by: str = "kill_switch",
) -> list[uuid.UUID]:
    """Cancel orders that have not started executing (kill switch). Caller holds the risk lock and the orders'."""
    for order in orders:
        order.transition(OrderStatus.CANCELLED)
        order.rejection_reason = reason[:500]
        store.release(state=state, reservation=store.Reservation.of(order))
    Order.objects.bulk_update(orders, ["status", "rejection_reason", "updated_at"])
    for order in orders:
        events_record(
            specs=[
                EventSpec(
                    EventType.ORDER_CANCELLED,
                    {"reason": order.rejection_reason, "by": by},
                    order_id=order.pk,
                    symbol=order.symbol,
                    causation_id=causation_id,
                )
            ],
            actor=actor,
            correlation_id=order.correlation_id,
        )
    return [order.pk for order in orders]
