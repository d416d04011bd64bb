"""The internal venue's matching core: a price-time-priority limit order book per instrument, pure Python.

No Django, no I/O, no clock, no randomness: an `OrderBook` is a function of the messages it was given
(`submit`, `cancel`, `replace`, in order), so replaying them gives the same trades and the same book, and a
book rebuilt from its resting orders (`OrderBook(symbol, rows)`) continues exactly as the original would.

Layout (the usual one: exchange-core's buckets, Nautilus' ladder of levels): per side a sorted list of the
prices that have orders and a dict price -> level; a level is a FIFO of orders (an OrderedDict by order id,
so the head is O(1) and a cancel anywhere in the queue is O(1) too) with its running total; one dict
order id -> order finds any resting order without scanning the book. Adding or removing a price level is
O(log levels); everything else is O(1) per order touched.

Rules (API.md "Internal venue", issue 16):
- price-time priority; a trade is at the resting order's price; a LIMIT buy never trades above its price,
  a sell never below; a MARKET order (price None) sweeps up to its `protection` bound if any, never rests;
- IOC trades what it can; FOK trades all or nothing (only liquidity it could trade counts: a self-match
  ends the count); DAY and GTC limits rest their remainder (expiry of DAY orders is the caller's cancel);
- self-trade prevention, "cancel the newer": the incoming order's remainder is cancelled ("SELF_TRADE") at
  the moment its next match would be against a resting order of the same owner or the same book; trades
  already done stand, the resting order stays;
- the reason a remainder did not rest, in this precedence: SELF_TRADE, FOK, MARKET_NO_LIQUIDITY (a MARKET
  order's remainder, whatever its time in force), IOC;
- prices and quantities are Decimals, used as given (never rounded or quantized here); the arithmetic is
  sums and differences of quantities, exact in the default context for anything a database column holds;
- `seq` gives time priority and must increase with every message (submit and replace); a book refuses a
  seq not above every seq it has seen, so its FIFOs are always in seq order and `orders()` rebuilds them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from sortedcontainers import SortedList

Side = Literal["BUY", "SELL"]
BUY: Final = "BUY"
SELL: Final = "SELL"
TIMES_IN_FORCE: Final = frozenset({"DAY", "GTC", "IOC", "FOK"})
RESTING_TIMES_IN_FORCE: Final = frozenset({"DAY", "GTC"})

# Why an incoming order's remainder did not rest (Result.cancelled).
CANCELLED_IOC: Final = "IOC"
CANCELLED_FOK: Final = "FOK"
CANCELLED_MARKET: Final = "MARKET_NO_LIQUIDITY"
CANCELLED_SELF_TRADE: Final = "SELF_TRADE"

ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class Resting:
    """An order resting in the book (as the venue's rows hold it: the book is rebuilt from them after a crash)."""

    order_id: str
    side: str  # "BUY" | "SELL"
    price: Decimal
    quantity: Decimal  # leaves quantity
    owner: str  # user id (self-trade prevention)
    book: str  # trading book code (self-trade prevention)
    seq: int  # time priority: lower = earlier


@dataclass(frozen=True, slots=True)
class Incoming:
    """An order arriving at the book (a new order, or an amended one that lost its place)."""

    order_id: str
    side: str
    quantity: Decimal
    price: Decimal | None  # None = MARKET order
    owner: str
    book: str
    tif: str  # "DAY" | "GTC" | "IOC" | "FOK"
    seq: int
    protection: Decimal | None = None  # MARKET orders: the worst price they may trade at; None = no bound


@dataclass(frozen=True, slots=True)
class Trade:
    aggressor_id: str
    resting_id: str
    side: str  # the aggressor's side
    price: Decimal  # always the resting order's price
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Result:
    trades: tuple[Trade, ...]
    filled: Decimal  # of the incoming order
    leaves: Decimal  # the incoming order's remaining quantity after matching (resting, or cancelled)
    rested: bool  # the remainder now rests in the book
    cancelled: str | None  # why the remainder did not rest; None if it rested or the order fully filled
    stp_cancelled: tuple[str, ...] = ()  # resting orders cancelled by self-trade prevention: none ("cancel newer")


class _Order:
    """A resting order as the book holds it: mutable leaves quantity, nothing else changes in place."""

    __slots__ = ("order_id", "side", "price", "quantity", "owner", "book", "seq")

    def __init__(self, order_id: str, side: str, price: Decimal, quantity: Decimal, owner: str, book: str, seq: int):
        self.order_id = order_id
        self.side = side
        self.price = price
        self.quantity = quantity
        self.owner = owner
        self.book = book
        self.seq = seq

    def frozen(self) -> Resting:
        return Resting(self.order_id, self.side, self.price, self.quantity, self.owner, self.book, self.seq)


class _Level:
    """The orders at one price, oldest first, and their total quantity (kept so depth costs no summing)."""

    __slots__ = ("price", "orders", "total")

    def __init__(self, price: Decimal) -> None:
        self.price = price
        self.orders: OrderedDict[str, _Order] = OrderedDict()
        self.total = ZERO


class _Ladder:
    """One side of the book: its price levels, sorted ascending; the best is the last for bids, the first for asks."""

    __slots__ = ("levels", "prices", "best_at", "bids")

    def __init__(self, *, bids: bool) -> None:
        self.levels: dict[Decimal, _Level] = {}
        self.prices = SortedList()
        self.bids = bids
        self.best_at = -1 if bids else 0

    def add(self, order: _Order) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = _Level(order.price)
            self.prices.add(order.price)
        level.orders[order.order_id] = order
        level.total += order.quantity

    def remove(self, order: _Order) -> None:
        level = self.levels[order.price]
        del level.orders[order.order_id]
        level.total -= order.quantity
        if not level.orders:
            del self.levels[order.price]
            self.prices.remove(order.price)

    def best(self) -> Decimal | None:
        return self.prices[self.best_at] if self.prices else None

    def best_first(self) -> Iterator[_Level]:
        prices = reversed(self.prices) if self.bids else iter(self.prices)
        levels = self.levels
        return (levels[price] for price in prices)


def _positive(value: Decimal, what: str) -> None:
    if not value.is_finite() or value <= ZERO:
        raise ValueError(f"{what} must be a finite number > 0, not {value}")


class OrderBook:
    """The central limit order book of one instrument. Exactly one writer at a time (the caller serialises)."""

    def __init__(self, symbol: str, resting: Iterable[Resting] = ()) -> None:
        self.symbol = symbol
        self._bids = _Ladder(bids=True)
        self._asks = _Ladder(bids=False)
        self._index: dict[str, _Order] = {}
        self._last_seq: int | None = None
        # Rows come in any order: the queue at each price is rebuilt in seq order, which is time priority.
        for row in sorted(resting, key=lambda row: row.seq):
            if row.side not in (BUY, SELL):
                raise ValueError(f"resting order {row.order_id}: side {row.side!r}")
            _positive(row.price, f"resting order {row.order_id}: price")
            _positive(row.quantity, f"resting order {row.order_id}: quantity")
            if row.order_id in self._index:
                raise ValueError(f"resting order {row.order_id} given twice")
            if self._last_seq is not None and row.seq <= self._last_seq:
                raise ValueError(f"resting order {row.order_id}: seq {row.seq} given twice")
            self._last_seq = row.seq
            order = _Order(row.order_id, row.side, row.price, row.quantity, row.owner, row.book, row.seq)
            self._index[row.order_id] = order
            (self._bids if row.side == BUY else self._asks).add(order)
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            raise ValueError(f"{symbol}: resting orders cross (bid {bid} >= ask {ask}): not a book")

    # -- messages ------------------------------------------------------------------------------------------

    def submit(self, order: Incoming) -> Result:
        """Match an incoming order against the book; rest its remainder if it is a DAY/GTC limit order."""
        # The guards are written out (no helper calls): they run on every message of the hot path.
        last_seq, quantity, price = self._last_seq, order.quantity, order.price
        if last_seq is not None and order.seq <= last_seq:
            self._check_seq(order.seq)
        if order.order_id in self._index:
            raise ValueError(f"order {order.order_id} is already in the book")
        if order.side != BUY and order.side != SELL:
            raise ValueError(f"order {order.order_id}: side {order.side!r}")
        if order.tif not in TIMES_IN_FORCE:
            raise ValueError(f"order {order.order_id}: time in force {order.tif!r}")
        if not quantity.is_finite() or quantity <= ZERO:
            _positive(quantity, f"order {order.order_id}: quantity")
        if price is not None:
            if not price.is_finite() or price <= ZERO:
                _positive(price, f"order {order.order_id}: price")
            bound: Decimal | None = price
        else:
            if order.protection is not None:
                _positive(order.protection, f"order {order.order_id}: protection")
            bound = order.protection
        self._last_seq = order.seq

        buy = order.side == BUY
        opposite = self._asks if buy else self._bids
        if order.tif == "FOK" and not self._fillable(order, opposite, bound):
            return Result((), ZERO, order.quantity, False, CANCELLED_FOK)
        trades, remaining, self_trade = self._match(order, opposite, bound)
        filled = order.quantity - remaining
        if not remaining:
            return Result(trades, filled, ZERO, False, None)
        if self_trade:
            return Result(trades, filled, remaining, False, CANCELLED_SELF_TRADE)
        if order.price is None:
            return Result(trades, filled, remaining, False, CANCELLED_MARKET)
        if order.tif not in RESTING_TIMES_IN_FORCE:
            return Result(trades, filled, remaining, False, order.tif)  # IOC (a FOK that passed fills entirely)
        resting = _Order(order.order_id, order.side, order.price, remaining, order.owner, order.book, order.seq)
        self._index[order.order_id] = resting
        (self._bids if buy else self._asks).add(resting)
        return Result(trades, filled, remaining, True, None)

    def cancel(self, order_id: str) -> Resting | None:
        """Take a resting order out of the book: what it was (its leaves are what is cancelled), None if absent."""
        order = self._index.pop(order_id, None)
        if order is None:
            return None
        (self._bids if order.side == BUY else self._asks).remove(order)
        return order.frozen()

    def replace(
        self, order_id: str, *, quantity: Decimal | None = None, price: Decimal | None = None, seq: int
    ) -> Result | None:
        """Amend a resting order; `quantity` is its new leaves quantity. None if it is not in the book.

        Same price and no more quantity: amended in place, it keeps its time priority. A new price or more
        quantity: it leaves the book and comes back as an incoming GTC limit order with the same id, owner
        and book and priority `seq`, so a new price that crosses trades (self-trade prevention included)
        and the remainder rests. `seq` is checked (it must increase) whether or not it is used.
        """
        order = self._index.get(order_id)
        if order is None:
            return None
        self._check_seq(seq)
        if quantity is not None:
            _positive(quantity, f"order {order_id}: quantity")
        if price is not None:
            _positive(price, f"order {order_id}: price")
        new_quantity = order.quantity if quantity is None else quantity
        new_price = order.price if price is None else price
        if new_price == order.price and new_quantity <= order.quantity:
            self._last_seq = seq
            level = (self._bids if order.side == BUY else self._asks).levels[order.price]
            level.total -= order.quantity - new_quantity
            order.quantity = new_quantity
            return Result((), ZERO, new_quantity, True, None)
        self.cancel(order_id)
        return self.submit(Incoming(order_id, order.side, new_quantity, new_price, order.owner, order.book, "GTC", seq))

    # -- reads ---------------------------------------------------------------------------------------------

    def best_bid(self) -> Decimal | None:
        return self._bids.best()

    def best_ask(self) -> Decimal | None:
        return self._asks.best()

    def depth(self, levels: int = 10) -> tuple[list[tuple[Decimal, Decimal, int]], list[tuple[Decimal, Decimal, int]]]:
        """(bids best first, asks best first), at most `levels` each: (price, total quantity, number of orders)."""
        if levels < 0:
            raise ValueError(f"depth of {levels} levels")

        def side(ladder: _Ladder) -> list[tuple[Decimal, Decimal, int]]:
            out: list[tuple[Decimal, Decimal, int]] = []
            for level in ladder.best_first():
                if len(out) == levels:
                    break
                out.append((level.price, level.total, len(level.orders)))
            return out

        return side(self._bids), side(self._asks)

    def get(self, order_id: str) -> Resting | None:
        """One resting order as it stands now, None if it is not in the book."""
        order = self._index.get(order_id)
        return None if order is None else order.frozen()

    def orders(self) -> list[Resting]:
        """Every resting order in priority order: the bids best first, then the asks best first (FIFO within a
        price). `OrderBook(symbol, book.orders())` is the same book."""
        return [
            order.frozen()
            for ladder in (self._bids, self._asks)
            for level in ladder.best_first()
            for order in level.orders.values()
        ]

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._index

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"<OrderBook {self.symbol}: {len(self)} orders, bid {self.best_bid()} ask {self.best_ask()}>"

    # -- matching ------------------------------------------------------------------------------------------

    def _check_seq(self, seq: int) -> None:
        if self._last_seq is not None and seq <= self._last_seq:
            raise ValueError(f"seq {seq} is not above the last seq {self._last_seq} of {self.symbol}")

    @staticmethod
    def _fillable(order: Incoming, opposite: _Ladder, bound: Decimal | None) -> bool:
        """Whether `order` would fill entirely: the liquidity in priority order up to its price bound, stopping
        at its first self-match (where matching would stop too)."""
        buy = order.side == BUY
        needed = order.quantity
        for level in opposite.best_first():
            if bound is not None and (level.price > bound if buy else level.price < bound):
                return False
            for resting in level.orders.values():
                if resting.owner == order.owner or resting.book == order.book:
                    return False
                needed -= resting.quantity
                if needed <= ZERO:
                    return True
        return False

    def _match(
        self, order: Incoming, opposite: _Ladder, bound: Decimal | None
    ) -> tuple[tuple[Trade, ...], Decimal, bool]:
        """Trade `order` against the opposite side in priority order: (trades, remaining quantity, stopped by a
        self-match). The hot path: written flat, with the lookups it repeats held in locals."""
        prices, levels, at, index = opposite.prices, opposite.levels, opposite.best_at, self._index
        aggressor, side, owner, book = order.order_id, order.side, order.owner, order.book
        buy = side == BUY
        remaining = order.quantity
        trades: list[Trade] = []
        while remaining and prices:
            price = prices[at]
            if bound is not None and (price > bound if buy else price < bound):
                break
            level = levels[price]
            queue = level.orders
            while remaining:
                resting = next(iter(queue.values()))
                if resting.owner == owner or resting.book == book:
                    return tuple(trades), remaining, True
                if resting.quantity > remaining:
                    quantity = remaining
                    resting.quantity -= quantity
                else:
                    quantity = resting.quantity
                    queue.popitem(last=False)
                    del index[resting.order_id]
                level.total -= quantity
                remaining -= quantity
                trades.append(Trade(aggressor, resting.order_id, side, resting.price, quantity))
                if not queue:
                    del levels[price]
                    prices.pop(at)
                    break
        return tuple(trades), remaining, False
