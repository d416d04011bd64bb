"""Order use-cases that write, besides submission (orders.submission): cancels, and halting trading.

Halting trading spans two domains, the risk state (risk.services) and the open orders (here); the action
lives in this, the higher one: the kill switch is set and the open orders cancelled in one transaction.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from approvals.models import PendingChange
from audit.models import Event, EventType
from audit.services import EventSpec, event_record, events_record
from books import directory
from core.exceptions import Conflict, InvalidInput
from orders import execution, internal
from orders.models import CANCELLABLE_STATUSES, Order, OrderStatus, OrderType, VenueCode
from orders.selectors import scope_orders
from orders.venue import VenueOrder, venue
from risk import checks, store
from risk import services as risk_services
from risk.access import scope_require
from risk.models import RiskLimits, RiskState, TradingState
from risk.scopes import FIRM, Scope

ZERO = Decimal(0)


class OrderNotCancellable(Conflict):
    code = "too_late_to_cancel"


@transaction.atomic
def order_cancel(*, actor: User, order_id: uuid.UUID, reason: str = "") -> Order:
    """Cancel what is left of an order that is not at a venue call this moment (409 otherwise): taken off the
    venue that holds it (the internal book, or the external venue asked), then its reservation given back."""
    state = store.lock()
    # of=("self",): lock the order, not the joined user row as well
    order = Order.objects.select_for_update(of=("self",)).select_related("user").get(pk=order_id)
    if order.status not in CANCELLABLE_STATUSES:
        raise OrderNotCancellable(f"Order {order.pk} is {order.status}: too late to cancel")
    if not execution.venue_cancel(order):
        raise OrderNotCancellable(f"Order {order.pk} is already filled at its venue: too late to cancel")
    leaves = order.leaves_quantity
    order.transition(OrderStatus.CANCELLED)
    order.rejection_reason = reason[:500] or f"Cancelled by {actor.username}"
    store.release(state=state, reservation=store.Reservation.of(order))
    order.leaves_quantity, order.resting_seq = ZERO, None
    order.save(update_fields=["status", "rejection_reason", "leaves_quantity", "resting_seq", "updated_at"])
    events_record(
        specs=[
            EventSpec(
                EventType.ORDER_CANCELLED,
                {"reason": order.rejection_reason, "by": actor.username, "leaves_quantity": leaves},
                order_id=order.pk,
                symbol=order.symbol,
            )
        ],
        actor=actor,
        correlation_id=order.correlation_id,
    )
    return order


class FourEyesCombined(Conflict):
    code = "four_eyes_combined"


@transaction.atomic
def kill_switch_set(
    *, actor: User | None, enabled: bool, reason: str = ""
) -> tuple[RiskState, list[uuid.UUID]] | PendingChange:
    """Turn the kill switch on or off. On: new orders are refused at once (the switch is read under the
    same lock as every decision) and every open order that has not started executing is cancelled,
    each cancellation caused by the switch's event. Returns the state and the cancelled order ids; or, when
    four-eyes holds the release back, the pending change (nothing else changed)."""
    store.lock()
    # The open orders are locked before the switch's event is written: the first event of a transaction
    # takes the event counter (audit/migrations/0006), the last lock in the lock order, and a transaction
    # holding it must not wait for an order row that an execution (which writes events too) holds.
    orders = (
        list(Order.objects.select_for_update().filter(status__in=CANCELLABLE_STATUSES).order_by("pk"))
        if enabled
        else []
    )
    written = risk_services.kill_switch_state_set(actor=actor, enabled=enabled, reason=reason)
    if isinstance(written, PendingChange):
        return written
    state, event = written
    reason = f"Kill switch activated: {reason}".strip(": ")
    return state, _orders_cancel(orders, state=state, actor=actor, reason=reason, causation_id=event.event_id)


@transaction.atomic
def scope_state_set(
    *, actor: User, scope: Scope, state: str, reason: str
) -> tuple[str, list[uuid.UUID]] | PendingChange:
    """Set a scope's trading state (ACTIVE, REDUCING, HALTED) under the risk lock. HALTED cancels the scope's
    open orders that have not started executing, in this transaction, each caused by the state's event (the
    firm's: v1's KILL_SWITCH_ACTIVATED). The firm scope is the v1 kill switch too. Answers the previous state
    and the cancelled order ids; or, when four-eyes holds a release of HALTED back, the pending change."""
    scope_require(scope)
    firm = store.lock()
    # The open orders are locked before the event is written (see kill_switch_set).
    orders = (
        list(scope_orders(scope).select_for_update(of=("self",)).filter(status__in=CANCELLABLE_STATUSES).order_by("pk"))
        if state == TradingState.HALTED
        else []
    )
    written = risk_services.trading_state_write(actor=actor, scope=scope, state=state, reason=reason)
    if isinstance(written, PendingChange):
        return written
    previous, event = written
    cancel_reason = f"Trading halted ({scope}): {reason}".strip(": ")
    by = "kill_switch" if scope == FIRM else "trading_state"
    cancelled = _orders_cancel(
        orders, state=firm, actor=actor, reason=cancel_reason, causation_id=event.event_id, by=by
    )
    return previous, cancelled


@transaction.atomic
def controls_update(
    *, actor: User | None, kill_switch_enabled: bool | None = None, reason: str = "", **changes: Any
) -> RiskLimits | PendingChange:
    """Change firm limits and, if asked, the kill switch together: both or neither (PUT/PATCH /risk/limits).

    The limit values are validated before anything changes, so a bad value cannot leave the kill switch
    switched while the answer says 400. When four-eyes holds one part back, the other cannot go ahead alone
    (both or neither): a request with both parts is refused (409) and nothing is kept; one part alone answers
    its pending change."""
    risk_services.limits_validate(changes)
    state = store.lock()
    switched: tuple[RiskState, list[uuid.UUID]] | PendingChange | None = None
    if kill_switch_enabled is not None and kill_switch_enabled != state.kill_switch_enabled:
        switched = kill_switch_set(actor=actor, enabled=kill_switch_enabled, reason=reason or "changed with the limits")
    if not changes:
        return switched if isinstance(switched, PendingChange) else store.firm_limits()
    limits = risk_services.risk_limits_update(actor=actor, reason=reason, **changes)
    if switched is not None and (isinstance(switched, PendingChange) or isinstance(limits, PendingChange)):
        # rolls back this transaction: neither part is written nor kept pending
        raise FourEyesCombined(
            "Part of this change waits for four-eyes approval: send the kill switch and the limits apart."
        )
    return limits


def _orders_cancel(
    orders: list[Order],
    *,
    state: RiskState,
    actor: User | None,
    reason: str,
    causation_id: uuid.UUID,
    by: str = "kill_switch",
) -> list[uuid.UUID]:
    """Cancel orders that are not at a venue call this moment (kill switch, HALTED): each taken off its venue
    first (one the external venue has already filled is left to its execution), then what it holds released.
    Caller holds the risk lock and the orders'."""
    orders = [order for order in orders if execution.venue_cancel(order)]
    leaves = {}
    for order in orders:
        order.transition(OrderStatus.CANCELLED)
        order.rejection_reason = reason[:500]
        store.release(state=state, reservation=store.Reservation.of(order))
        leaves[order.pk] = order.leaves_quantity
        order.leaves_quantity, order.resting_seq = ZERO, None
    Order.objects.bulk_update(orders, ["status", "rejection_reason", "leaves_quantity", "resting_seq", "updated_at"])
    for order in orders:
        events_record(
            specs=[
                EventSpec(
                    EventType.ORDER_CANCELLED,
                    {"reason": order.rejection_reason, "by": by, "leaves_quantity": leaves[order.pk]},
                    order_id=order.pk,
                    symbol=order.symbol,
                    causation_id=causation_id,
                )
            ],
            actor=actor,
            correlation_id=order.correlation_id,
        )
    return [order.pk for order in orders]


class OrderNotAmendable(Conflict):
    code = "too_late_to_amend"


class AmendInvalid(InvalidInput):
    code = "invalid_amend"


class _AmendRefused(Exception):
    def __init__(self, decision: checks.Decision) -> None:
        super().__init__(decision.message)
        self.decision = decision


def order_amend(
    *, actor: User, order_id: uuid.UUID, quantity: Decimal | None = None, price: Decimal | None = None
) -> tuple[Order, checks.Decision]:
    """Amend an open order's quantity (the new total, FIX OrderQty: leaves = quantity - filled) and/or price
    (PATCH /orders/{id}). Every pre-trade check runs again on the amended order, as a decision of its own under
    the risk lock, on the state without the order's old reservation. Refused: the order is left exactly as it
    was and the answer is REJECTED with the violations (ORDER_AMEND_REJECTED). Passed: the old reservation is
    replaced by the new one, the venue that holds the order is asked to replace it (the internal book trades at
    once if the new price crosses), ORDER_AMENDED. ORDER_AMEND_REQUESTED first, either way.
    409 if the order is not open or is at a venue call this moment; 400 for a quantity not above what is filled,
    a price on a MARKET order, or no change."""
    with transaction.atomic():
        state = store.lock()
        order = Order.objects.select_for_update(of=("self",)).select_related("user").get(pk=order_id)
        if order.status not in CANCELLABLE_STATUSES:
            raise OrderNotAmendable(f"Order {order.pk} is {order.status}: too late to amend")
        filled = order.executed_quantity or ZERO
        new_quantity = order.quantity if quantity is None else quantity
        new_price = order.price if price is None else price
        if price is not None and order.order_type == OrderType.MARKET:
            raise AmendInvalid("A MARKET order has no price to amend", fields={"price": "not amendable"})
        if new_quantity <= filled:
            raise AmendInvalid(
                f"quantity is the new total: it must be above the {filled} already filled (cancel the order to stop "
                "what is left)",
                fields={"quantity": f"must be greater than the filled quantity {filled}"},
            )
        if new_quantity == order.quantity and new_price == order.price:
            raise AmendInvalid("Nothing to amend: the quantity and price are the order's own")
        before = {"quantity": order.quantity, "price": order.price, "leaves_quantity": order.leaves_quantity}
        after = {"quantity": new_quantity, "price": new_price, "leaves_quantity": new_quantity - filled}
        requested = event_record(
            event_type=EventType.ORDER_AMEND_REQUESTED,
            payload={"from": before, "to": after, "by": actor.username},
            order_id=order.pk,
            symbol=order.symbol,
            correlation_id=order.correlation_id,
            actor=actor,
        )
        try:
            with transaction.atomic():
                decision = _amend(state, order, new_quantity, new_price, filled)
        except _AmendRefused as refused:
            order.refresh_from_db()
            event_record(
                event_type=EventType.ORDER_AMEND_REJECTED,
                payload={
                    "from": before,
                    "to": after,
                    "message": refused.decision.message,
                    "violations": _breaches(refused.decision),
                },
                order_id=order.pk,
                symbol=order.symbol,
                correlation_id=order.correlation_id,
                causation_id=requested.event_id,
                actor=actor,
            )
            return order, refused.decision
    return order, decision


def _amend(state: RiskState, order: Order, quantity: Decimal, price: Decimal, filled: Decimal) -> checks.Decision:
    """The amend's decision and writes (inside a savepoint: a refusal rolls them back)."""
    store.release(state=state, reservation=store.Reservation.of(order))
    ref = directory.by_id(order.book_id)
    scopes = store.OrderScopes.of(desk=ref.desk, book=ref.code, trader=order.user.username, symbol=order.symbol)
    locked = store.lock_and_read(scopes=scopes.all, symbols=[order.symbol])
    market = locked.markets.get(order.symbol)
    leaves = quantity - filled
    market_order = order.order_type == OrderType.MARKET
    intent = checks.OrderIntent(
        symbol=order.symbol,
        side=checks.Side(order.side),
        quantity=leaves,
        price=(market.reference or price) if market_order and market is not None else price,
        market_order=market_order,
    )
    intent, decision = checks.check_at_market(intent, market, scopes.all, scopes.book, locked.snapshot, timezone.now())
    if not decision.approved:
        raise _AmendRefused(decision)
    venue_order = VenueOrder(order_id=str(order.pk), symbol=order.symbol, side=order.side, quantity=leaves, price=price)
    if order.venue == VenueCode.SIM and not getattr(venue(), "replace", lambda _o: True)(venue_order):
        raise OrderNotAmendable(f"Order {order.pk} is already filled at its venue: too late to amend")
    store.reserve(state=locked.state, reservations=[store.Reservation.of_intent(intent, scopes)])
    old_price = order.price
    order.quantity = quantity
    order.exposure_price, order.notional_price = intent.exposure_price, intent.notional_price
    order.updated_at = timezone.now()
    resting = order.venue == VenueCode.INTERNAL and order.resting_seq is not None
    if not resting:
        order.price, order.leaves_quantity = price, leaves
    order.save(update_fields=["quantity", "price", "leaves_quantity", "exposure_price", "notional_price", "updated_at"])
    event_record(
        event_type=EventType.ORDER_AMENDED,
        payload={
            "quantity": quantity,
            "price": price,
            "previous_price": old_price,
            "leaves_quantity": leaves,
            "valuation": {"exposure_price": intent.exposure_price, "notional_price": intent.notional_price},
            "message": decision.message,
        },
        order_id=order.pk,
        symbol=order.symbol,
        correlation_id=order.correlation_id,
    )
    if resting:
        internal.book_replace(state=state, order=order, quantity=leaves, price=price)
    elif order.venue == VenueCode.SIM and order.status == OrderStatus.APPROVED:
        # Resting at the venue: checked at once at its new price (its re-check message, queued before the
        # amend, finds it amended since and is skipped). One waiting for its first call keeps its message.
        if Event.objects.filter(order_id=order.pk, event_type=EventType.ORDER_RESTING).exists():
            transaction.on_commit(lambda: execution.enqueue(order.pk, order.correlation_id), robust=True)
    return decision


def _breaches(decision: checks.Decision) -> list[dict[str, Any]]:
    return [
        {"code": b.code.value, "scope": b.scope, "limit": b.limit, "projected": b.projected} for b in decision.breaches
    ]
