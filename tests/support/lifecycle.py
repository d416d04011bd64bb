"""A small internal-venue market for the back-office tests: two traders in two books, resting orders on both
sides of AAPL, one trade, one amendment passed and one refused. Built through the services (submission, the
execution task's work run synchronously, order_amend), never by writing rows."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal as D  # noqa: N817
from typing import Any

from guardian.shortcuts import assign_perm

from books.models import Book, Desk
from orders import execution, venue
from orders.models import Order
from orders.services import order_amend
from orders.submission import OrderRequest, order_submit
from tests.support.market import price

_ids = itertools.count(1)


def sync_execution(settings: Any, tmp_path: Any, monkeypatch: Any) -> None:
    """Execution is called by the test (no broker), as in tests/orders/test_lifecycle.py."""
    settings.REDIS_URL, settings.VAR_DIR = "", str(tmp_path)
    settings.VENUE_LATENCY_MS, settings.VENUE_MAX_SLIPPAGE, settings.VENUE_SCRIPT = 0, "0", ""
    settings.VENUE_SUCCESS_PROBABILITY = 1.0
    venue.venue.cache_clear()
    monkeypatch.setattr("orders.submission.enqueue", lambda *a, **k: True)
    monkeypatch.setattr(execution, "enqueue", lambda *a, **k: True)
    price("AAPL", "100")


def other_book(trader2: Any) -> Book:
    """trader2 trades in book OTHER (self-trade prevention keeps one book from trading with itself)."""
    book = Book.objects.create(code="OTHER", name="Other", desk=Desk.objects.get(code="EQ"), currency="USD")
    assign_perm("books.trade_book", trader2, book)
    assign_perm("books.view_book", trader2, book)
    return book


def internal(user: Any, side: str, quantity: str, px: str, tif: str = "GTC", **terms: Any) -> Order:
    """Decide an INTERNAL order, then run its execution task's work once (its match)."""
    order, decision = order_submit(
        user=user,
        request=OrderRequest(
            symbol="AAPL",
            side=side,
            quantity=D(quantity),
            price=D(px),
            venue="INTERNAL",
            time_in_force=tif,
            client_order_id=f"bo-{next(_ids)}",
            **terms,
        ),
    )
    assert decision.approved, decision.message
    execution.order_execute(order_id=order.pk)
    order.refresh_from_db()
    return order


@dataclass
class Market:
    ask: Order  # SELL 10 @ 101, 4 filled by the IOC bid: PARTIALLY_FILLED, 6 resting
    bid: Order  # BUY 8 @ 99, amended to 9 @ 99.50 (passed), then to 100,000 (refused): rests 9 @ 99.50
    ioc: Order  # BUY 4 @ 101 IOC: EXECUTED against the ask


def aapl_market(trader: Any, trader2: Any) -> Market:
    """Book of AAPL after it: bids 99.50 x 9 (1 order), 98 x 3 (1); asks 101 x 6 (1), 102 x 12 (2); one trade
    4 @ 101 (aggressor BUY)."""
    other_book(trader2)
    ask = internal(trader2, "SELL", "10", "101", book="OTHER")
    internal(trader2, "SELL", "5", "102", book="OTHER")
    internal(trader2, "SELL", "7", "102", book="OTHER")
    ioc = internal(trader, "BUY", "4", "101", tif="IOC")
    bid = internal(trader, "BUY", "8", "99")
    internal(trader, "BUY", "3", "98")
    _, passed = order_amend(actor=trader, order_id=bid.pk, quantity=D(9), price=D("99.5"))
    assert passed.approved, passed.message
    _, refused = order_amend(actor=trader, order_id=bid.pk, quantity=D(100_000))
    assert not refused.approved
    for order in (ask, bid, ioc):
        order.refresh_from_db()
    return Market(ask=ask, bid=bid, ioc=ioc)
