"""Fixtures of the market tests: the demo instrument set loaded, rows to edit, a latest price, instruments made
with the ORM, and a clean price cache. These tests start from an empty market (no instrument, no price)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings

from market import directory, prices, services
from market.management.commands.load_instruments import DEMO
from market.models import Instrument, Mark


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The market app's own tests start from an empty market (no instrument, no price)."""
    for item in items:
        if "tests/market/" in str(item.path):
            item.add_marker(pytest.mark.empty_market)


def demo_rows() -> list[dict[str, Any]]:
    return copy.deepcopy(json.loads(DEMO.read_text()))


@pytest.fixture
def demo(db: Any) -> services.LoadResult:
    return services.instruments_load(demo_rows(), source="test")


def mark(symbol: str, last: str, when: dt.datetime) -> Mark:
    """A latest price as market.prices leaves it (the values the instruments API reads from it)."""
    price = Decimal(last)
    return Mark.objects.create(
        symbol=symbol,
        last=price,
        timestamp=when,
        source="test",
        factor=Decimal(1),
        unit_value=price,
        day=when.date(),
    )


def _clear_redis() -> None:
    if settings.REDIS_URL:
        try:
            prices._redis().delete(prices.REDIS_KEY)
        except Exception:  # noqa: BLE001 - a test without Redis has nothing to clear
            pass


@pytest.fixture(autouse=True)
def _fresh_prices() -> Iterator[None]:
    directory.forget()
    _clear_redis()
    yield
    directory.forget()
    _clear_redis()


INSTRUMENTS: list[dict[str, Any]] = [
    {"symbol": "AAPL", "name": "Apple", "asset_class": "EQUITY", "currency": "USD", "tick_size": Decimal("0.01"),
     "lot_size": Decimal(1), "initial_price": Decimal(148), "volatility": Decimal("0.28"), "staleness_seconds": 60},
    {"symbol": "MSFT", "name": "Microsoft", "asset_class": "EQUITY", "currency": "USD",
     "tick_size": Decimal("0.01"), "lot_size": Decimal(1), "initial_price": Decimal(300),
     "volatility": Decimal("0.25")},
    {"symbol": "EURUSD", "name": "Euro / US dollar", "asset_class": "FX", "currency": "USD",
     "tick_size": Decimal("0.0001"), "lot_size": Decimal(1000), "initial_price": Decimal("1.0850"),
     "volatility": Decimal("0.07")},
    {"symbol": "SAP", "name": "SAP", "asset_class": "EQUITY", "currency": "EUR", "tick_size": Decimal("0.01"),
     "lot_size": Decimal(1), "initial_price": Decimal(190), "volatility": Decimal("0.24")},
    {"symbol": "AAPL-C-150", "name": "AAPL call 150", "asset_class": "OPTION", "currency": "USD",
     "tick_size": Decimal("0.01"), "lot_size": Decimal(1), "multiplier": Decimal(100), "initial_price": Decimal(6),
     "volatility": Decimal("0.28"), "underlying": "AAPL", "strike": Decimal(150), "option_right": "CALL",
     "expiry": dt.date(2027, 6, 18)},
    {"symbol": "ESH7", "name": "E-mini S&P 500 Mar 2027", "asset_class": "FUTURE", "currency": "USD",
     "tick_size": Decimal("0.25"), "lot_size": Decimal(1), "multiplier": Decimal(50), "initial_price": Decimal(5000),
     "volatility": Decimal("0.18"), "expiry": dt.date(2027, 3, 19)},
]  # fmt: skip


@pytest.fixture
def instruments(db: Any) -> dict[str, Instrument]:
    made = {row["symbol"]: Instrument.objects.create(**row) for row in INSTRUMENTS}
    directory.forget()
    return made
