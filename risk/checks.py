"""Pure pre-trade checks: frozen dataclasses in, a decision out. No Django, no I/O, `today` passed in.

Semantics (DESIGN.md, "Risk semantics"):
- The kill switch is checked first and alone: it rejects at once.
- Open orders (approved, not yet ended) count as if they may all fill, or none: for each symbol the
  worst long case (position + every open buy) and the worst short case (position - every open sell)
  are both checked, so any subset of fills stays inside what was approved.
- The order's symbol is projected at the order price; other symbols are valued at their mark (last fill
  price) plus the notional of their open orders. A new symbol is valued at the order price.
- A limit is violated when the projected measure is over it AND the order increases that measure:
  an order that reduces risk is never refused because the book is already over a (lowered) limit.
- Daily volume = executed notional of the UTC day + open orders' notional + this order's notional.
- Exactly at a limit passes; one cent over fails.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class Violation(StrEnum):
    POSITION_LIMIT = "POSITION_LIMIT"
    DAILY_VOLUME_LIMIT = "DAILY_VOLUME_LIMIT"
    NET_EXPOSURE_LIMIT = "NET_EXPOSURE_LIMIT"
    GROSS_EXPOSURE_LIMIT = "GROSS_EXPOSURE_LIMIT"


KILL_SWITCH_MESSAGE = "Kill switch is active - all trading halted"


@dataclass(frozen=True)
class OrderIntent:
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price


@dataclass(frozen=True)
class Limits:
    max_position_size: Decimal
    max_daily_volume: Decimal
    max_net_exposure: Decimal
    max_gross_exposure: Decimal


@dataclass(frozen=True)
class SymbolBook:
    """One symbol's position and the orders still open in it."""

    symbol: str
    quantity: Decimal = ZERO
    mark_price: Decimal | None = None
    open_buy_quantity: Decimal = ZERO
    open_buy_notional: Decimal = ZERO
    open_sell_quantity: Decimal = ZERO
    open_sell_notional: Decimal = ZERO

    def worst_values(self) -> tuple[Decimal, Decimal]:
        """(long, short) signed values if every open buy, or every open sell, fills."""
        held = self.quantity * (self.mark_price or ZERO)
        return held + self.open_buy_notional, held - self.open_sell_notional

    def projected_values(self, price: Decimal, buy: Decimal = ZERO, sell: Decimal = ZERO) -> tuple[Decimal, Decimal]:
        """(long, short) signed values at `price` with extra buy/sell quantity added to the open orders."""
        long_qty = self.quantity + self.open_buy_quantity + buy
        short_qty = self.quantity - self.open_sell_quantity - sell
        return long_qty * price, short_qty * price


@dataclass(frozen=True)
class RiskSnapshot:
    """The risk state read under the risk lock."""

    limits: Limits
    kill_switch_active: bool
    trading_day: dt.date
    executed_volume: Decimal
    open_volume: Decimal
    books: tuple[SymbolBook, ...] = ()

    def daily_volume(self, today: dt.date) -> Decimal:
        """Executed notional of `today` (a snapshot from an earlier UTC day counts zero) plus open orders."""
        executed = self.executed_volume if self.trading_day == today else ZERO
        return executed + self.open_volume

    def with_reservation(self, intent: OrderIntent) -> RiskSnapshot:
        """The snapshot after an approved order is reserved: what the next decision of a batch must see,
        exactly what the database holds once the batch's reservations are written (risk.store.reserve)."""
        notional = intent.notional
        found = next((b for b in self.books if b.symbol == intent.symbol), None)
        book = found or SymbolBook(symbol=intent.symbol)
        if intent.side == Side.BUY:
            grown = replace(
                book,
                open_buy_quantity=book.open_buy_quantity + intent.quantity,
                open_buy_notional=book.open_buy_notional + notional,
            )
        else:
            grown = replace(
                book,
                open_sell_quantity=book.open_sell_quantity + intent.quantity,
                open_sell_notional=book.open_sell_notional + notional,
            )
        books = tuple(grown if b is found else b for b in self.books) if found else (*self.books, grown)
        return replace(self, books=books, open_volume=self.open_volume + notional)


@dataclass(frozen=True)
class Measures:
    position: Decimal
    daily_volume: Decimal
    net_exposure: Decimal
    gross_exposure: Decimal


@dataclass(frozen=True)
class Decision:
    approved: bool
    kill_switch: bool = False
    violations: tuple[Violation, ...] = ()
    projected: Measures | None = None
    current: Measures | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        if self.kill_switch:
            return KILL_SWITCH_MESSAGE
        if self.violations:
            return "Risk violations: " + ", ".join(v.value for v in self.violations)
        return "Order approved - all pre-trade risk checks passed"


def _exposure(values: list[tuple[Decimal, Decimal]]) -> tuple[Decimal, Decimal]:
    """(worst net, gross) over per-symbol (long, short) worst values."""
    total_long = sum((long for long, _ in values), ZERO)
    total_short = sum((short for _, short in values), ZERO)
    net = max(abs(total_long), abs(total_short))
    gross = sum((max(abs(long), abs(short)) for long, short in values), ZERO)
    return net, gross


def measure(intent: OrderIntent, snapshot: RiskSnapshot, today: dt.date) -> tuple[Measures, Measures]:
    """(current, projected) measures for the order: projected includes the order, current does not."""
    book = next((b for b in snapshot.books if b.symbol == intent.symbol), SymbolBook(symbol=intent.symbol))
    others = [b.worst_values() for b in snapshot.books if b.symbol != intent.symbol]
    buy = intent.quantity if intent.side == Side.BUY else ZERO
    sell = intent.quantity if intent.side == Side.SELL else ZERO
    before = book.projected_values(intent.price)
    after = book.projected_values(intent.price, buy=buy, sell=sell)
    net_before, gross_before = _exposure([*others, before])
    net_after, gross_after = _exposure([*others, after])
    volume = snapshot.daily_volume(today)
    current = Measures(max(abs(before[0]), abs(before[1])), volume, net_before, gross_before)
    projected = Measures(max(abs(after[0]), abs(after[1])), volume + intent.notional, net_after, gross_after)
    return current, projected


def check_order(intent: OrderIntent, snapshot: RiskSnapshot, today: dt.date) -> Decision:
    """Decide one order. The kill switch short-circuits; the limit checks all run and collect violations."""
    if snapshot.kill_switch_active:
        return Decision(approved=False, kill_switch=True)
    current, projected = measure(intent, snapshot, today)
    limits = snapshot.limits
    violations: list[Violation] = []
    if projected.position > limits.max_position_size and projected.position > current.position:
        violations.append(Violation.POSITION_LIMIT)
    if projected.daily_volume > limits.max_daily_volume:
        violations.append(Violation.DAILY_VOLUME_LIMIT)
    if projected.net_exposure > limits.max_net_exposure and projected.net_exposure > current.net_exposure:
        violations.append(Violation.NET_EXPOSURE_LIMIT)
    if projected.gross_exposure > limits.max_gross_exposure and projected.gross_exposure > current.gross_exposure:
        violations.append(Violation.GROSS_EXPOSURE_LIMIT)
    return Decision(approved=not violations, violations=tuple(violations), projected=projected, current=current)
