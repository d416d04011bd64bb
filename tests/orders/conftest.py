"""Fixtures of the order pipeline tests: an order body, a submit helper and a snapshot of everything written."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from audit.models import Event
from orders.models import Fill, Order
from risk.models import Position, RiskState


def body(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"symbol": "AAPL", "side": "BUY", "quantity": 100, "price": 150.25}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def written() -> dict[str, Any]:
    """Everything an order submission may write: to compare before and after a refused request."""
    state = RiskState.objects.filter(pk=1).first()
    return {
        "orders": Order.objects.count(),
        "fills": Fill.objects.count(),
        "events": Event.objects.count(),
        "positions": list(Position.objects.order_by("symbol").values()),
        "open_volume": state.open_volume if state else Decimal(0),
    }


def written_but_refusal(before: dict[str, Any], reason: str, client_order_id: str | None = None) -> None:
    """A refused submission wrote exactly one thing: its ORDER_REFUSED event, with why (issue 18.3)."""
    after = written()
    assert {**after, "events": after["events"] - 1} == before
    refusal = Event.objects.order_by("-sequence").first()
    assert refusal is not None and refusal.event_type == "ORDER_REFUSED"
    assert refusal.payload["reason"] == reason and refusal.payload["client_order_id"] == client_order_id
    assert refusal.order_id is None


@pytest.fixture
def submit() -> Callable[..., Any]:
    """Submit through the service (not HTTP): returns (order, decision)."""
    from orders.submission import OrderRequest, order_submit

    def run(user: Any, **changes: Any) -> Any:
        data = body(**changes)
        data["quantity"] = Decimal(str(data["quantity"]))
        data["price"] = Decimal(str(data["price"]))
        return order_submit(user=user, request=OrderRequest(**data))

    return run


def submission(user: Any, address: str | None = "203.0.113.7", **changes: Any) -> Any:
    """One order as order_submit hands it to a batch (orders.submission.Submission)."""
    from orders.submission import OrderRequest, Submission, book_for, execution_key

    data: dict[str, Any] = {"symbol": "AAA", "side": "BUY", "quantity": "10", "price": "100"}
    data.update(changes)
    data["quantity"], data["price"] = Decimal(str(data["quantity"])), Decimal(str(data["price"]))
    request = OrderRequest(**data)
    return Submission(
        user=user,
        request=request,
        correlation_id=uuid.uuid4(),
        address=address,
        key=execution_key(user_id=user.pk, request=request),
        book=book_for(user, None),
    )
