"""Order use-cases that write: submission with its risk decision, cancels, and the kill switch's cancels."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import EventType
from audit.services import EventSpec, events_record
from itirp import context
from itirp.exceptions import Conflict
from orders.models import Order, OrderStatus
from risk import checks
from risk import services as risk_services
from risk.models import RiskState

logger = logging.getLogger("itirp.orders")


class DuplicateOrder(Conflict):
    code = "duplicate_order"
    default_message = (
        "Duplicate order: an order with the same execution key "
        "(user, symbol, side, quantity, price, client_order_id) was already submitted"
    )


class OrderNotCancellable(Conflict):
    code = "too_late_to_cancel"


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    strategy: str = "default"
    client_order_id: str | None = None

    def intent(self) -> checks.OrderIntent:
        return checks.OrderIntent(
            symbol=self.symbol, side=checks.Side(self.side), quantity=self.quantity, price=self.price
        )


def _canonical(number: Decimal) -> str:
    return format(number.normalize(), "f")


def execution_key(*, user_id: Any, request: OrderRequest) -> str:
    """The seed's idempotency key: user, symbol, side, quantity, price, client_order_id (numbers canonical)."""
    parts = [
        str(user_id),
        request.symbol,
        request.side,
        _canonical(request.quantity),
        _canonical(request.price),
        request.client_order_id or "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _is_duplicate_in_window(key: str) -> bool:
    """A key-less order identical to one submitted inside ORDER_DUPLICATE_WINDOW_SECONDS (under the lock)."""
    window = settings.ORDER_DUPLICATE_WINDOW_SECONDS
    if window <= 0:
        return False
    since = timezone.now() - timedelta(seconds=window)
    return Order.objects.filter(execution_key=key, client_order_id__isnull=True, created_at__gte=since).exists()


def order_submit(
    *, user: Any, request: OrderRequest, correlation_id: uuid.UUID | None = None
) -> tuple[Order, checks.Decision]:
    """Decide and record one order atomically.

    One transaction: lock the risk state, refuse a duplicate (409, nothing written), run the checks on the
    locked state, insert the order as APPROVED or REJECTED, reserve its exposure and volume if approved,
    append ORDER_CREATED, RISK_CHECK_STARTED and RISK_CHECK_PASSED/FAILED. After commit, queue execution.
    """
    correlation = correlation_id or context.correlation_id()
    key = execution_key(user_id=user.pk, request=request)
    try:
        with transaction.atomic():
            state = risk_services.risk_state_lock()
            # A keyed order's duplicate is refused by the unique index order_execution_key_unique (the INSERT
            # below fails, everything rolls back, 409): no extra query under the lock. Only the keyless
            # window needs a look-up, and it must run under the lock.
            if request.client_order_id is None and _is_duplicate_in_window(key):
                raise DuplicateOrder()
            now = timezone.now()
            decision = checks.check_order(
                request.intent(), risk_services.risk_snapshot(state), risk_services.utc_today(now)
            )
            order = Order(
                correlation_id=correlation,
                client_order_id=request.client_order_id,
                execution_key=key,
                user=user,
                symbol=request.symbol,
                side=request.side,
                quantity=request.quantity,
                price=request.price,
                strategy=request.strategy,
                status=OrderStatus.PENDING,
                created_at=now,
                updated_at=now,
            )
            order.transition(OrderStatus.RISK_CHECK)
            if decision.approved:
                order.transition(OrderStatus.APPROVED)
            else:
                order.transition(OrderStatus.REJECTED)
                order.rejection_reason = decision.message
            order.save(force_insert=True)
            if decision.approved:
                risk_services.reservation_add(
                    state=state, symbol=order.symbol, side=order.side, quantity=order.quantity, price=order.price
                )
            events_record(specs=_decision_events(order, decision), actor=user, correlation_id=correlation)
            if decision.approved:
                transaction.on_commit(partial(enqueue_execution, order.pk, correlation), robust=True)
    except IntegrityError as exc:
        if "execution_key" in str(exc) or "order_execution_key_unique" in str(exc):
            raise DuplicateOrder() from exc
        raise
    return order, decision


def _decision_events(order: Order, decision: checks.Decision) -> list[EventSpec]:
    ids = {"order_id": order.pk, "symbol": order.symbol}
    created = EventSpec(
        EventType.ORDER_CREATED,
        {
            "symbol": order.symbol,
            "side": order.side,
            "quantity": order.quantity,
            "price": order.price,
            "strategy": order.strategy,
            "client_order_id": order.client_order_id,
            "user_id": order.user.username,
        },
        **ids,
    )
    started = EventSpec(
        EventType.RISK_CHECK_STARTED, {"checks": _checks_run(decision)}, causation_id=created.event_id, **ids
    )
    result: dict[str, Any] = {"message": decision.message}
    if decision.projected is not None:
        result["projected"] = _measures(decision.projected)
    if decision.approved:
        outcome = EventSpec(EventType.RISK_CHECK_PASSED, result, causation_id=started.event_id, **ids)
    else:
        result.update({"kill_switch": decision.kill_switch, "violations": [v.value for v in decision.violations]})
        outcome = EventSpec(EventType.RISK_CHECK_FAILED, result, causation_id=started.event_id, **ids)
    return [created, started, outcome]


def _checks_run(decision: checks.Decision) -> list[str]:
    if decision.kill_switch:
        return ["KILL_SWITCH"]
    return ["KILL_SWITCH", *[v.value for v in checks.Violation]]


def _measures(measures: checks.Measures) -> dict[str, Decimal]:
    return {
        "position": measures.position,
        "daily_volume": measures.daily_volume,
        "net_exposure": measures.net_exposure,
        "gross_exposure": measures.gross_exposure,
    }


def enqueue_execution(order_id: uuid.UUID, correlation_id: uuid.UUID | None = None) -> bool:
    """Queue the execution task. A broker that is down loses nothing: the order stays APPROVED and the
    sweeper queues it again once the broker is back."""
    from orders.tasks import order_execute

    try:
        order_execute.apply_async(
            args=[str(order_id)], kwargs={"correlation_id": str(correlation_id) if correlation_id else None}
        )
        return True
    except Exception:  # noqa: BLE001 - any broker failure; the order is durable and will be swept
        logger.warning("broker unavailable: order %s left APPROVED for the sweeper", order_id)
        return False


def reservation_release_for(*, state: RiskState, order: Order) -> None:
    """Give back what an order reserved when it was approved (it was cancelled, failed or filled)."""
    risk_services.reservation_release(
        state=state, symbol=order.symbol, side=order.side, quantity=order.quantity, price=order.price
    )


@transaction.atomic
def order_cancel(*, actor: Any, order_id: uuid.UUID, reason: str = "") -> Order:
    """Cancel an order that has not started executing (409 otherwise) and give back its reservation."""
    state = risk_services.risk_state_lock()
    # of=("self",): lock the order, not the joined user row as well
    order = Order.objects.select_for_update(of=("self",)).select_related("user").get(pk=order_id)
    if order.status != OrderStatus.APPROVED:
        raise OrderNotCancellable(f"Order {order.pk} is {order.status}: too late to cancel")
    order.transition(OrderStatus.CANCELLED)
    order.rejection_reason = reason[:500] or f"Cancelled by {actor.username}"
    order.save(update_fields=["status", "rejection_reason", "updated_at"])
    reservation_release_for(state=state, order=order)
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


def orders_cancel_open(*, state: RiskState, actor: Any, reason: str, causation_id: uuid.UUID) -> list[uuid.UUID]:
    """Cancel every order that has not started executing (kill switch). Caller holds the risk lock."""
    orders = list(Order.objects.select_for_update().filter(status=OrderStatus.APPROVED).order_by("pk"))
    for order in orders:
        order.transition(OrderStatus.CANCELLED)
        order.rejection_reason = reason[:500]
        reservation_release_for(state=state, order=order)
    Order.objects.bulk_update(orders, ["status", "rejection_reason", "updated_at"])
    for order in orders:
        events_record(
            specs=[
                EventSpec(
                    EventType.ORDER_CANCELLED,
                    {"reason": order.rejection_reason, "by": "kill_switch"},
                    order_id=order.pk,
                    symbol=order.symbol,
                    causation_id=causation_id,
                )
            ],
            actor=actor,
            correlation_id=order.correlation_id,
        )
    return [order.pk for order in orders]
