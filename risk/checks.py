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

Scopes (API.md "Scopes"): an order is checked against each scope it falls under (firm, desk, book, trader,
symbol), each with its own RiskSnapshot (its limits, null = not set there; its trading state; its volumes;
its positions); `check_scoped` merges the answers. The strictest trading state applies: HALTED rejects at
once (the firm's with the seed's kill-switch message); REDUCING lets through only an order that reduces the
absolute position of its book in its symbol, open orders on the order's side counted as filled.
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
    MAX_ORDER_QUANTITY = "MAX_ORDER_QUANTITY"
    MAX_ORDER_VALUE = "MAX_ORDER_VALUE"
    PRICE_COLLAR = "PRICE_COLLAR"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    INSTRUMENT_RESTRICTED = "INSTRUMENT_RESTRICTED"
    TICK_SIZE = "TICK_SIZE"
    LOT_SIZE = "LOT_SIZE"
    STALE_MARKET_DATA = "STALE_MARKET_DATA"
    TRADING_HALTED = "TRADING_HALTED"
    REDUCE_ONLY = "REDUCE_ONLY"


# The seed's four limit checks, which every decision runs (RISK_CHECK_STARTED lists them).
SEED_CHECKS = (
    Violation.POSITION_LIMIT,
    Violation.DAILY_VOLUME_LIMIT,
    Violation.NET_EXPOSURE_LIMIT,
    Violation.GROSS_EXPOSURE_LIMIT,
)
ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"


KILL_SWITCH_MESSAGE = "Kill switch is active - all trading halted"


@dataclass(frozen=True)
class OrderIntent:
    """An order as the checks value it. `price` is the order's own; `exposure_price` and `notional_price` are
    one unit's exposure and notional in the reporting currency (Market.value: the worse of the order's and
    the reference price, times multiplier and FX; an option's exposure delta-adjusted). Without them (the
    pure tests of the seed's semantics) the order is valued at its own price."""

    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    exposure_price: Decimal | None = None
    notional_price: Decimal | None = None
    reference: Decimal | None = None
    # A MARKET order: `price` is the reference it is checked at (not the client's), so no tick is asked of it.
    market_order: bool = False

    @property
    def notional(self) -> Decimal:
        """Volume and order value: quantity x one unit's notional."""
        return self.quantity * (self.price if self.notional_price is None else self.notional_price)

    @property
    def unit(self) -> Decimal:
        """One unit's exposure, as positions and limits count it."""
        return self.price if self.exposure_price is None else self.exposure_price

    @property
    def exposure(self) -> Decimal:
        return self.quantity * self.unit


@dataclass(frozen=True)
class Limits:
    """A scope's limits; None = not set at this scope (the other scopes of the order still apply)."""

    max_position_size: Decimal | None = None
    max_daily_volume: Decimal | None = None
    max_net_exposure: Decimal | None = None
    max_gross_exposure: Decimal | None = None
    max_order_quantity: Decimal | None = None
    max_order_value: Decimal | None = None
    max_daily_loss: Decimal | None = None
    price_collar_pct: Decimal | None = None


@dataclass(frozen=True)
class Market:
    """The order's instrument and its latest price, read under the risk lock: reference data (status, tick,
    lot, staleness bound) and what one unit is worth in the reporting currency (`factor`: multiplier x FX;
    `unit_value`: one unit's exposure at the reference price, an option's delta-adjusted)."""

    status: str
    tick_size: Decimal
    lot_size: Decimal
    staleness_seconds: int
    reference: Decimal | None = None
    reference_time: dt.datetime | None = None
    factor: Decimal | None = None
    unit_value: Decimal | None = None
    is_option: bool = False

    def age(self, now: dt.datetime) -> Decimal | None:
        if self.reference_time is None:
            return None
        return Decimal(str(round((now - self.reference_time).total_seconds(), 3)))

    def stale(self, now: dt.datetime) -> bool:
        age = self.age(now)
        return self.reference is None or self.factor is None or age is None or age > self.staleness_seconds

    def value(self, intent: OrderIntent) -> OrderIntent:
        """The order valued at market: the worse (larger) of its own and the reference price for its notional;
        its exposure the same, or, for an option, the delta-adjusted value of one unit at the reference."""
        assert self.reference is not None and self.factor is not None
        notional_price = max(intent.price, self.reference) * self.factor
        exposure_price = self.unit_value if self.is_option and self.unit_value is not None else notional_price
        return replace(intent, exposure_price=exposure_price, notional_price=notional_price, reference=self.reference)


def instrument_breaches(intent: OrderIntent, market: Market | None, now: dt.datetime) -> tuple[Breach, ...]:
    """The checks of the order against its instrument (RTS 6 Art. 15(1)): known, tradable (not restricted or
    halted), price on the tick, quantity in whole lots, a fresh reference price. Scope: the symbol's."""
    scope = f"symbol:{intent.symbol}"
    if market is None:
        return (Breach(Violation.UNKNOWN_INSTRUMENT, scope),)
    if market.status == "RESTRICTED":
        return (Breach(Violation.INSTRUMENT_RESTRICTED, scope, "RESTRICTED"),)
    if market.status == "HALTED":
        return (Breach(Violation.TRADING_HALTED, scope, HALTED),)
    breaches = []
    if not intent.market_order and intent.price % market.tick_size != 0:
        breaches.append(Breach(Violation.TICK_SIZE, scope, market.tick_size, intent.price))
    if intent.quantity % market.lot_size != 0:
        breaches.append(Breach(Violation.LOT_SIZE, scope, market.lot_size, intent.quantity))
    if market.stale(now):
        breaches.append(Breach(Violation.STALE_MARKET_DATA, scope, Decimal(market.staleness_seconds), market.age(now)))
    return tuple(breaches)


def collar_deviation(intent: OrderIntent) -> Decimal | None:
    """How far, in percent of the reference price, the order's price is from it (None without a reference)."""
    if intent.reference is None or intent.reference <= 0:
        return None
    return (abs(intent.price - intent.reference) * 100 / intent.reference).quantize(Decimal("0.0001"))


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
class Totals:
    """A scope's worst values summed over all its symbols: long (every open buy filled), short (every open
    sell filled), and gross (each symbol's larger of the two, in absolute value). Exposure = these totals
    less the decided symbol's own part, plus that symbol projected at the order's price."""

    long: Decimal = ZERO
    short: Decimal = ZERO
    gross: Decimal = ZERO

    @staticmethod
    def part(book: SymbolBook | None) -> tuple[Decimal, Decimal, Decimal]:
        if book is None:
            return ZERO, ZERO, ZERO
        long, short = book.worst_values()
        return long, short, max(abs(long), abs(short))

    def swap(self, old: SymbolBook | None, new: SymbolBook) -> Totals:
        """The totals once the symbol's row `old` became `new`."""
        (ol, os_, og), (nl, ns, ng) = self.part(old), self.part(new)
        return Totals(self.long - ol + nl, self.short - os_ + ns, self.gross - og + ng)


@dataclass(frozen=True)
class RiskSnapshot:
    """One scope's risk state read under the risk lock (the firm's, in the seed)."""

    limits: Limits
    kill_switch_active: bool
    trading_day: dt.date
    executed_volume: Decimal
    open_volume: Decimal
    books: tuple[SymbolBook, ...] = ()
    scope: str = "firm"
    state: str = ACTIVE
    # Totals over every symbol of the scope, kept so that `books` may hold only the symbols being decided:
    # None = `books` holds them all and the totals are summed from it.
    totals: Totals | None = None
    # Realised and unrealised P&L of the UTC day over all the scope's symbols, at market.
    daily_pnl: Decimal = ZERO

    @property
    def halted(self) -> bool:
        return self.kill_switch_active or self.state == HALTED

    def daily_volume(self, today: dt.date) -> Decimal:
        """Executed notional of `today` (a snapshot from an earlier UTC day counts zero) plus open orders."""
        executed = self.executed_volume if self.trading_day == today else ZERO
        return executed + self.open_volume

    def with_reservation(self, intent: OrderIntent) -> RiskSnapshot:
        """The snapshot after an approved order is reserved: what the next decision of a batch must see,
        exactly what the database holds once the batch's reservations are written (risk.store.reserve)."""
        exposure = intent.exposure
        found = next((b for b in self.books if b.symbol == intent.symbol), None)
        book = found or SymbolBook(symbol=intent.symbol)
        if intent.side == Side.BUY:
            grown = replace(
                book,
                open_buy_quantity=book.open_buy_quantity + intent.quantity,
                open_buy_notional=book.open_buy_notional + exposure,
            )
        else:
            grown = replace(
                book,
                open_sell_quantity=book.open_sell_quantity + intent.quantity,
                open_sell_notional=book.open_sell_notional + exposure,
            )
        books = tuple(grown if b is found else b for b in self.books) if found else (*self.books, grown)
        totals = self.totals.swap(found, grown) if self.totals is not None else None
        return replace(self, books=books, open_volume=self.open_volume + intent.notional, totals=totals)


@dataclass(frozen=True)
class Measures:
    position: Decimal
    daily_volume: Decimal
    net_exposure: Decimal
    gross_exposure: Decimal


@dataclass(frozen=True)
class Breach:
    """One violated limit or state, explained: API.md's `violations: [{code, scope, limit, projected}]`."""

    code: Violation
    scope: str
    limit: Decimal | str | None = None
    projected: Decimal | None = None


@dataclass(frozen=True)
class Decision:
    approved: bool
    kill_switch: bool = False
    violations: tuple[Violation, ...] = ()
    projected: Measures | None = None
    current: Measures | None = None
    notes: dict[str, str] = field(default_factory=dict)
    breaches: tuple[Breach, ...] = ()

    @property
    def message(self) -> str:
        if self.kill_switch:
            return KILL_SWITCH_MESSAGE
        if self.violations == (Violation.TRADING_HALTED,):
            return "Trading halted for " + ", ".join(b.scope for b in self.breaches)
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


def _exposure_with(others: Totals, values: tuple[Decimal, Decimal]) -> tuple[Decimal, Decimal]:
    """(worst net, gross) of the other symbols' totals plus one symbol's (long, short) values."""
    long, short = values
    return max(abs(others.long + long), abs(others.short + short)), others.gross + max(abs(long), abs(short))


def measure(intent: OrderIntent, snapshot: RiskSnapshot, today: dt.date) -> tuple[Measures, Measures]:
    """(current, projected) measures for the order: projected includes the order, current does not."""
    found = next((b for b in snapshot.books if b.symbol == intent.symbol), None)
    book = found or SymbolBook(symbol=intent.symbol)
    buy = intent.quantity if intent.side == Side.BUY else ZERO
    sell = intent.quantity if intent.side == Side.SELL else ZERO
    before = book.projected_values(intent.unit)
    after = book.projected_values(intent.unit, buy=buy, sell=sell)
    if snapshot.totals is not None:
        own_long, own_short, own_gross = Totals.part(found)
        others = Totals(
            snapshot.totals.long - own_long, snapshot.totals.short - own_short, snapshot.totals.gross - own_gross
        )
        net_before, gross_before = _exposure_with(others, before)
        net_after, gross_after = _exposure_with(others, after)
    else:
        rest = [b.worst_values() for b in snapshot.books if b.symbol != intent.symbol]
        net_before, gross_before = _exposure([*rest, before])
        net_after, gross_after = _exposure([*rest, after])
    volume = snapshot.daily_volume(today)
    current = Measures(max(abs(before[0]), abs(before[1])), volume, net_before, gross_before)
    projected = Measures(max(abs(after[0]), abs(after[1])), volume + intent.notional, net_after, gross_after)
    return current, projected


def check_order(intent: OrderIntent, snapshot: RiskSnapshot, today: dt.date) -> Decision:
    """Decide one order against one scope. A halt short-circuits; the limit checks all run and collect
    violations (a limit not set at this scope is not checked)."""
    scope = snapshot.scope
    if snapshot.halted:
        firm = scope == "firm"
        return Decision(
            approved=False,
            kill_switch=firm,
            violations=() if firm else (Violation.TRADING_HALTED,),
            breaches=(Breach(Violation.TRADING_HALTED, scope, HALTED),),
        )
    current, projected = measure(intent, snapshot, today)
    limits = snapshot.limits
    breaches: list[Breach] = []

    def over(code: Violation, limit: Decimal | None, value: Decimal, before: Decimal | None = None) -> None:
        if limit is not None and value > limit and (before is None or value > before):
            breaches.append(Breach(code, scope, limit, value))

    over(Violation.POSITION_LIMIT, limits.max_position_size, projected.position, current.position)
    over(Violation.DAILY_VOLUME_LIMIT, limits.max_daily_volume, projected.daily_volume)
    over(Violation.NET_EXPOSURE_LIMIT, limits.max_net_exposure, projected.net_exposure, current.net_exposure)
    over(Violation.GROSS_EXPOSURE_LIMIT, limits.max_gross_exposure, projected.gross_exposure, current.gross_exposure)
    over(Violation.MAX_ORDER_QUANTITY, limits.max_order_quantity, intent.quantity)
    over(Violation.MAX_ORDER_VALUE, limits.max_order_value, intent.notional)
    deviation = collar_deviation(intent) if limits.price_collar_pct is not None else None
    over(Violation.PRICE_COLLAR, limits.price_collar_pct, deviation if deviation is not None else ZERO)
    violations = tuple(b.code for b in breaches)
    return Decision(
        approved=not breaches, violations=violations, projected=projected, current=current, breaches=tuple(breaches)
    )


def reduces(intent: OrderIntent, book: SymbolBook | None) -> bool:
    """True when the order reduces the absolute position of its book in its symbol, without crossing zero,
    the book's open orders on the same side counted as filled."""
    if book is None:
        return False
    if intent.side == Side.SELL:
        return book.quantity > 0 and intent.quantity + book.open_sell_quantity <= book.quantity
    return book.quantity < 0 and intent.quantity + book.open_buy_quantity <= -book.quantity


@dataclass(frozen=True)
class ScopedSnapshot:
    """Every scope a batch's orders fall under, each as a RiskSnapshot, keyed by scope string."""

    views: dict[str, RiskSnapshot]

    def with_reservation(self, intent: OrderIntent, scopes: tuple[str, ...]) -> ScopedSnapshot:
        """After an approved order is reserved in each of its scopes (risk.store.reserve writes the same)."""
        views = dict(self.views)
        for scope in scopes:
            views[scope] = views[scope].with_reservation(intent)
        return ScopedSnapshot(views)


def check_scoped(
    intent: OrderIntent, scopes: tuple[str, ...], book_scope: str, snapshot: ScopedSnapshot, today: dt.date
) -> Decision:
    """Decide one order against every scope it falls under (firm first). HALTED anywhere rejects at once;
    REDUCING anywhere requires the order to reduce its book's position; every scope's limits apply.
    `projected`/`current` are the firm's measures (the seed's event payload)."""
    views = [snapshot.views[scope] for scope in scopes]
    stopped = _halted(views)
    if stopped is not None:
        return stopped
    breaches: list[Breach] = []
    book: SymbolBook | None = None
    reducing = [view.scope for view in views if view.state == REDUCING]
    if reducing:
        book = next((b for b in snapshot.views[book_scope].books if b.symbol == intent.symbol), None)
        if not reduces(intent, book):
            breaches += [Breach(Violation.REDUCE_ONLY, scope, REDUCING) for scope in reducing]
    firm_decision: Decision | None = None
    for view in views:
        decision = check_order(intent, view, today)
        breaches += decision.breaches
        loss_limit = view.limits.max_daily_loss
        if loss_limit is not None and -view.daily_pnl > loss_limit:
            # Over the day's loss limit, only orders that reduce their book's position pass.
            book = book or next((b for b in snapshot.views[book_scope].books if b.symbol == intent.symbol), None)
            if not reduces(intent, book):
                breaches.append(Breach(Violation.DAILY_LOSS_LIMIT, view.scope, loss_limit, -view.daily_pnl))
        if firm_decision is None:
            firm_decision = decision
    assert firm_decision is not None
    order = list(Violation)
    codes = tuple(sorted({b.code for b in breaches}, key=order.index))
    return Decision(
        approved=not breaches,
        violations=codes,
        projected=firm_decision.projected,
        current=firm_decision.current,
        breaches=tuple(breaches),
    )


def _halted(views: list[RiskSnapshot]) -> Decision | None:
    halted = [view for view in views if view.halted]
    if not halted:
        return None
    firm = any(view.scope == "firm" for view in halted)
    stops = tuple(Breach(Violation.TRADING_HALTED, view.scope, HALTED) for view in halted)
    return Decision(
        approved=False, kill_switch=firm, violations=() if firm else (Violation.TRADING_HALTED,), breaches=stops
    )


def refused(breaches: tuple[Breach, ...]) -> Decision:
    order = list(Violation)
    codes = tuple(sorted({b.code for b in breaches}, key=order.index))
    return Decision(approved=False, violations=codes, breaches=breaches)


def check_at_market(
    intent: OrderIntent,
    market: Market | None,
    scopes: tuple[str, ...],
    book_scope: str,
    snapshot: ScopedSnapshot,
    now: dt.datetime,
) -> tuple[OrderIntent, Decision]:
    """Decide one order as a bank's desk does (API.md, "Pre-trade answers"): a halt anywhere first; then its
    instrument (known, tradable, tick, lot, fresh price); then, valued at market (Market.value), every
    scope's limits, collar and daily loss (check_scoped). Answers the order as valued, and the decision."""
    stopped = _halted([snapshot.views[scope] for scope in scopes])
    if stopped is not None:
        return intent, stopped
    problems = instrument_breaches(intent, market, now)
    if problems:
        return intent, refused(problems)
    assert market is not None
    valued = market.value(intent)
    return valued, check_scoped(valued, scopes, book_scope, snapshot, now.astimezone(dt.UTC).date())
