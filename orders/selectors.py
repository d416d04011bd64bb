"""Order read queries: what a user may see, and the list page."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from accounts.models import User
from core.exceptions import NotFound
from orders.models import Order


def orders_visible(*, user: User) -> QuerySet[Order]:
    """Every order for roles that may view all; a trader's own orders otherwise."""
    qs = Order.objects.all()
    if not user.has_perm("orders.view_all_orders"):
        qs = qs.filter(user=user)
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
) -> tuple[list[Order], int]:
    qs = orders_visible(user=user)
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
