"""RiskSnapshot.with_reservation (risk/checks.py): the snapshot the next order of a batch is checked on.

No database: frozen snapshots built by hand. An approved order's quantity and notional join its symbol's open
orders on its side (a new symbol gets a book of its own), the firm's open volume grows by its notional, nothing
else changes, and the snapshot it came from is left as it was.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal as D  # noqa: N817 - the tables read better with a short name

import pytest

from risk.checks import Limits, OrderIntent, RiskSnapshot, Side, SymbolBook, Violation, check_order

TODAY = dt.date(2026, 3, 2)
LIMITS = Limits(
    max_position_size=D("1000000"),
    max_daily_volume=D("10000000"),
    max_net_exposure=D("5000000"),
    max_gross_exposure=D("15000000"),
)
AAPL = SymbolBook(
    symbol="AAPL",
    quantity=D(100),
    mark_price=D(150),
    open_buy_quantity=D(10),
    open_buy_notional=D(1500),
    open_sell_quantity=D(4),
    open_sell_notional=D(600),
)
MSFT = SymbolBook(symbol="MSFT", quantity=D(-5), mark_price=D(300))


def snapshot(*books: SymbolBook, limits: Limits = LIMITS) -> RiskSnapshot:
    return RiskSnapshot(
        limits=limits,
        kill_switch_active=False,
        trading_day=TODAY,
        executed_volume=D(5000),
        open_volume=D(2100),
        books=books,
    )


def intent(symbol: str, side: Side, quantity: str, price: str) -> OrderIntent:
    return OrderIntent(symbol=symbol, side=side, quantity=D(quantity), price=D(price))


def test_with_reservation_when_a_new_symbol_then_a_book_of_its_own_is_added() -> None:
    before = snapshot(AAPL, MSFT)
    after = before.with_reservation(intent("TSLA", Side.BUY, "3", "200"))
    assert after.books == (AAPL, MSFT, SymbolBook(symbol="TSLA", open_buy_quantity=D(3), open_buy_notional=D(600)))
    assert after.open_volume == D(2700)


def test_with_reservation_when_a_new_symbol_is_sold_then_its_book_holds_the_open_sell() -> None:
    after = snapshot().with_reservation(intent("TSLA", Side.SELL, "2", "50"))
    assert after.books == (SymbolBook(symbol="TSLA", open_sell_quantity=D(2), open_sell_notional=D(100)),)
    assert after.open_volume == D(2200)


def test_with_reservation_when_a_buy_of_a_known_symbol_then_its_open_buys_grow_in_place() -> None:
    after = snapshot(AAPL, MSFT).with_reservation(intent("AAPL", Side.BUY, "5", "160"))
    grown = dataclasses.replace(AAPL, open_buy_quantity=D(15), open_buy_notional=D(2300))
    assert after.books == (grown, MSFT)  # same place, the sell side and the position untouched
    assert after.open_volume == D(2900)


def test_with_reservation_when_a_sell_of_a_known_symbol_then_its_open_sells_grow_in_place() -> None:
    after = snapshot(AAPL, MSFT).with_reservation(intent("MSFT", Side.SELL, "7", "310"))
    assert after.books == (AAPL, dataclasses.replace(MSFT, open_sell_quantity=D(7), open_sell_notional=D(2170)))
    assert after.open_volume == D(4270)


def test_with_reservation_when_applied_then_the_original_snapshot_is_unchanged_and_frozen() -> None:
    before = snapshot(AAPL, MSFT)
    copy = dataclasses.replace(before)
    after = before.with_reservation(intent("AAPL", Side.SELL, "1", "1")).with_reservation(
        intent("NEW", Side.BUY, "1", "1")
    )
    assert before == copy and before.books == (AAPL, MSFT) and before.open_volume == D(2100)
    assert after is not before
    # everything but the books and the open volume is carried over
    assert (after.limits, after.kill_switch_active, after.trading_day, after.executed_volume) == (
        LIMITS,
        False,
        TODAY,
        D(5000),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.open_volume = D(0)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.books[0].open_buy_quantity = D(0)  # type: ignore[misc]


def test_with_reservation_when_orders_are_reserved_one_after_another_then_a_later_order_sees_them() -> None:
    """What a batch relies on: the daily volume fits two orders, the third is refused on the grown snapshot."""
    tight = dataclasses.replace(LIMITS, max_daily_volume=D(5000 + 2100 + 2000))
    order = intent("IBM", Side.BUY, "10", "100")
    state = snapshot(AAPL, limits=tight)
    decisions = []
    for _ in range(3):
        decision = check_order(order, state, TODAY)
        decisions.append(decision)
        if decision.approved:
            state = state.with_reservation(order)
    assert [d.approved for d in decisions] == [True, True, False]
    assert decisions[2].violations == (Violation.DAILY_VOLUME_LIMIT,)
    assert state.books[-1] == SymbolBook(symbol="IBM", open_buy_quantity=D(20), open_buy_notional=D(2000))
