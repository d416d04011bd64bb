"""Fixtures of the desks, books and scoped controls tests: a second desk and book, and open orders made with the
ORM (the order path is not needed to test what a trading state does to orders already open)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from books.models import Book, Desk
from orders.models import Order, OrderStatus


@pytest.fixture
def fx(db: Any) -> Book:
    """Desk FX with book FXMAIN, beside the migration's EQ / MAIN."""
    desk = Desk.objects.create(code="FX", name="Foreign exchange")
    return Book.objects.create(code="FXMAIN", name="FX main", desk=desk, currency="EUR")


@pytest.fixture
def main_book(db: Any) -> Book:
    return Book.objects.select_related("desk").get(code="MAIN")


@pytest.fixture
def make_order(db: Any) -> Callable[..., Order]:
    def make(user: Any, book: Book, *, symbol: str = "AAPL", status: str = OrderStatus.APPROVED) -> Order:
        return Order.objects.create(
            user=user,
            book=book,
            symbol=symbol,
            side="BUY",
            quantity=Decimal(1),
            price=Decimal(10),
            status=status,
            execution_key=f"k-{Order.objects.count()}",
        )

    return make
