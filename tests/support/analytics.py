"""Positions and price history for the analytics tests: a position as fills would leave it in a book and in the
aggregates beside it, and daily bars with given closes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import numpy as np
from django.utils import timezone

from books.models import Book, Desk
from market.history import trading_days
from market.models import Bar, BarInterval
from risk.models import Position


def fx_desk() -> Book:
    """Desk FX with book FXMAIN, beside the migration's EQ / MAIN."""
    desk = Desk.objects.create(code="FX", name="Foreign exchange")
    return Book.objects.create(code="FXMAIN", name="FX main", desk=desk, currency="USD")


def hold(
    symbol: str, quantity: str | int, price: str | float, *, book: str = "MAIN", trader: str | None = None
) -> None:
    """A position in a book and in the aggregates the risk path keeps beside it (desk, firm, trader)."""
    desk = Book.objects.get(code=book).desk.code
    scopes = [f"book:{book}", f"desk:{desk}", "firm"] + ([f"trader:{trader}"] if trader else [])
    for scope in scopes:
        row, _ = Position.objects.get_or_create(scope=scope, symbol=symbol)
        row.quantity += Decimal(str(quantity))
        row.average_price = Decimal(str(price))
        row.save()


def history(symbol: str, closes: Sequence[float]) -> None:
    """Daily bars ending yesterday (UTC weekdays) with these closes, oldest first."""
    yesterday = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)
    days = trading_days(yesterday, len(closes))
    bars = []
    for day, close in zip(days, closes, strict=True):
        price = Decimal(repr(round(close, 6)))
        start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
        bars.append(
            Bar(symbol=symbol, interval=BarInterval.DAY, start=start, open=price, high=price, low=price, close=price)
        )
    Bar.objects.bulk_create(bars)


def random_walk(last: float, sigma: float, days: int, seed: int) -> list[float]:
    """Closes of a geometric random walk with daily log-return sigma, ending at `last`."""
    steps = np.random.default_rng(seed).normal(0.0, sigma, days - 1)
    path = last * np.exp(np.concatenate([[0.0], np.cumsum(steps)]) - steps.sum())
    return [float(round(x, 6)) for x in path]
