"""Fixtures of the market tests: the demo instrument set loaded, rows to edit, and a latest price."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from market import services
from market.management.commands.load_instruments import DEMO
from market.models import Mark


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
