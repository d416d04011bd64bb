"""Analytics fixtures: positions held in books (and their firm, desk and trader aggregates), daily history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from books.models import Book, Desk
from market.history import trading_days
from market.models import Bar, BarInterval
from risk.models import Position


@pytest.fixture
def fx_desk(db: Any) -> Book:
    """Desk FX with book FXMAIN, beside the migration's EQ / MAIN."""
    desk = Desk.objects.create(code="FX", name="Foreign exchange")
    return Book.objects.create(code="FXMAIN", name="FX main", desk=desk, currency="USD")


@pytest.fixture
def hold(db: Any) -> Callable[..., None]:
    """hold(symbol, quantity, price, book="MAIN", trader=None): a position in a book and in the aggregates the
    risk path keeps beside it (desk, firm, trader), as fills would leave them."""

    def make(
        symbol: str, quantity: str | int, price: str | float, *, book: str = "MAIN", trader: str | None = None
    ) -> None:
        desk = Book.objects.get(code=book).desk.code
        scopes = [f"book:{book}", f"desk:{desk}", "firm"] + ([f"trader:{trader}"] if trader else [])
        for scope in scopes:
            row, _ = Position.objects.get_or_create(scope=scope, symbol=symbol)
            row.quantity += Decimal(str(quantity))
            row.average_price = Decimal(str(price))
            row.save()

    return make


@pytest.fixture
def history(db: Any) -> Callable[..., None]:
    """history(symbol, closes): daily bars ending yesterday (UTC weekdays) with these closes, oldest first."""

    def make(symbol: str, closes: Sequence[float]) -> None:
        yesterday = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)
        days = trading_days(yesterday, len(closes))
        Bar.objects.bulk_create(
            Bar(
                symbol=symbol,
                interval=BarInterval.DAY,
                start=dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC),
                open=Decimal(repr(round(c, 6))),
                high=Decimal(repr(round(c, 6))),
                low=Decimal(repr(round(c, 6))),
                close=Decimal(repr(round(c, 6))),
            )
            for day, c in zip(days, closes, strict=True)
        )

    return make


def random_walk(last: float, sigma: float, days: int, seed: int) -> list[float]:
    """Closes of a geometric random walk with daily log-return sigma, ending at `last`."""
    steps = np.random.default_rng(seed).normal(0.0, sigma, days - 1)
    path = last * np.exp(np.concatenate([[0.0], np.cumsum(steps)]) - steps.sum())
    return [float(round(x, 6)) for x in path]
