"""Fixtures of the back-office tests: Django test clients signed in to the admin as each role."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def staff_client() -> Callable[[Any], Client]:
    def make(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def open_order(trader: Any) -> Any:
    """An APPROVED order of trader1 (no worker runs, and on_commit does not fire in these tests)."""
    from orders.submission import OrderRequest, order_submit

    order, decision = order_submit(
        user=trader,
        request=OrderRequest(symbol="AAPL", side="BUY", quantity=Decimal("10"), price=Decimal("150")),
        correlation_id=uuid.uuid4(),  # its own request, as through the API
    )
    assert decision.approved
    return order
