"""Order read queries: what a user may see, and the list page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet

from accounts.models import User
from audit.models import Event, EventType
from core.exceptions import NotFound
from orders.models import Order, VenueCode
from risk.scopes import Scope


def orders_visible(*, user: User) -> QuerySet[Order]:
    """Every order for roles that may view all; a trader's own orders otherwise."""
    qs = Order.objects.all()
    if not user.has_perm("orders.view_all_orders"):
        qs = qs.filter(user=user)
    return qs


def scope_orders(scope: Scope) -> QuerySet[Order]:
    """The orders a scope covers: the firm all; desk:X those whose book's desk is X; book:X, trader:U and
    symbol:S those of that book, user and symbol."""
    qs = Order.objects.all()
    match scope.kind:
        case "desk":
            return qs.filter(book__desk__code=scope.key)
        case "book":
            return qs.filter(book__code=scope.key)
        case "trader":
            return qs.filter(user__username=scope.key)
        case "symbol":
            return qs.filter(symbol=scope.key)
    return qs


def order_get_visible(*, user: User, order_id: uuid.UUID) -> Order:
    """An order the user may see, or 404 (not 403: another trader's order does not exist for you)."""
    order = orders_visible(user=user).select_related("user").filter(pk=order_id).first()
    if order is None:
        raise NotFound(f"Order {order_id} not found")
    return order


def orders_page(
    *,
    user: User,
    limit: int,
    offset: int,
    status: str | None = None,
    symbol: str | None = None,
    client_order_id: str | None = None,
    scopes: Sequence[Scope] = (),
) -> tuple[list[Order], int]:
    """A page of the orders a user sees, newest first; `scopes` (?book= ?desk= ?trader= ?symbol=) narrow it."""
    qs = orders_visible(user=user)
    for scope in scopes:
        qs = qs.filter(pk__in=scope_orders(scope).values("pk"))
    if client_order_id:
        qs = qs.filter(client_order_id=client_order_id)
    if status:
        qs = qs.filter(status=status)
    if symbol:
        qs = qs.filter(symbol=symbol.upper())
    total = qs.count()
    # Orders decided in one batch share their creation time: the id breaks the tie, so pages never overlap.
    page = list(
        qs.order_by("-created_at", "-id").only(
            "id", "symbol", "side", "quantity", "status", "created_at", "client_order_id"
        )[offset : offset + limit]
    )
    return page, total


def venues() -> list[dict[str, Any]]:
    """The venues an order may name: the simulated external one (its circuit breaker's state) and INTERNAL."""
    from orders import breaker

    try:
        breaker_state: str | None = str(breaker.breaker_snapshot()["status"])
    except Exception:  # noqa: BLE001 - whatever the breaker's store does, the list still answers
        breaker_state = "unknown"
    return [
        {"code": VenueCode.SIM, "name": VenueCode.SIM.label, "kind": "EXTERNAL", "circuit_breaker": breaker_state},
        {"code": VenueCode.INTERNAL, "name": VenueCode.INTERNAL.label, "kind": "INTERNAL", "circuit_breaker": None},
    ]


AMEND_EVENTS = (EventType.ORDER_AMEND_REQUESTED, EventType.ORDER_AMENDED, EventType.ORDER_AMEND_REJECTED)


def order_amendments(*, order_id: uuid.UUID) -> list[dict[str, Any]]:
    """An order's amendments from its events, oldest first: each request (when, who, from -> to) with its
    outcome (AMENDED, or REJECTED with the message and violations). ORDER_AMENDED carries no causation id, but
    order_amend writes the request and its outcome in one transaction under the order's row lock, so the
    outcome is the next amend event of the order after its request."""
    rows: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    for event in Event.objects.filter(order_id=order_id, event_type__in=AMEND_EVENTS).order_by("sequence"):
        payload = event.payload or {}
        if event.event_type == EventType.ORDER_AMEND_REQUESTED:
            pending = {
                "requested_at": event.timestamp,
                "by": event.actor_username or payload.get("by", ""),
                "from": payload.get("from", {}),
                "to": payload.get("to", {}),
                "outcome": "PENDING",
                "message": "",
                "violations": [],
            }
            rows.append(pending)
        elif pending is not None:
            pending["outcome"] = "AMENDED" if event.event_type == EventType.ORDER_AMENDED else "REJECTED"
            pending["message"] = payload.get("message", "")
            pending["violations"] = payload.get("violations", [])
            pending = None
    return rows
