"""Analytics fixtures: positions held in books (and their aggregates) and daily history (tests/support/analytics.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from books.models import Book
from tests.support import analytics


@pytest.fixture
def fx_desk(db: Any) -> Book:
    return analytics.fx_desk()


@pytest.fixture
def hold(db: Any) -> Callable[..., None]:
    return analytics.hold


@pytest.fixture
def history(db: Any) -> Callable[..., None]:
    return analytics.history
