"""A naive order book: the matching rules of orders/matching.py read straight off the spec, to check it against.

One list of resting orders, filtered and sorted on every message: slow and obviously right, which is the point.
The property tests (tests/orders/test_matching.py) play the same random messages through both and compare
every answer and the book after each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal as D  # noqa: N817 - as in the tests it serves

from orders.matching import Incoming, Resting, Result, Trade


@dataclass
class _Row:
    order_id: str
    side: str
    price: D
    quantity: D
    owner: str
    book: str
    seq: int


@dataclass
class NaiveBook:
    """The reference: the rules read straight off the spec, over one list scanned and sorted on every message."""

    rows: list[_Row] = field(default_factory=list)

    def _queue(self, side: str) -> list[_Row]:
        """The resting orders of `side`, best first."""
        rows = [r for r in self.rows if r.side == side]
        return sorted(rows, key=lambda r: (-r.price if side == "BUY" else r.price, r.seq))

    def submit(self, o: Incoming) -> Result:
        bound = o.price if o.price is not None else o.protection
        buy = o.side == "BUY"
        opposite = self._queue("SELL" if buy else "BUY")

        def usable(r: _Row) -> bool:
            return bound is None or (r.price <= bound if buy else r.price >= bound)

        def self_match(r: _Row) -> bool:
            return r.owner == o.owner or r.book == o.book

        if o.tif == "FOK":
            available = D(0)
            for r in opposite:
                if not usable(r) or self_match(r):
                    break
                available += r.quantity
            if available < o.quantity:
                return Result((), D(0), o.quantity, False, "FOK")
        done: list[Trade] = []
        remaining, stp = o.quantity, False
        for r in opposite:
            if not remaining or not usable(r):
                break
            if self_match(r):
                stp = True
                break
            quantity = min(remaining, r.quantity)
            done.append(Trade(o.order_id, r.order_id, o.side, r.price, quantity))
            r.quantity -= quantity
            remaining -= quantity
        self.rows = [r for r in self.rows if r.quantity > 0]
        filled = o.quantity - remaining
        if not remaining:
            return Result(tuple(done), filled, D(0), False, None)
        reason = (
            "SELF_TRADE" if stp else "FOK" if o.tif == "FOK" else "MARKET_NO_LIQUIDITY" if o.price is None else "IOC"
        )
        if stp or o.price is None or o.tif in ("IOC", "FOK"):
            return Result(tuple(done), filled, remaining, False, reason)
        self.rows.append(_Row(o.order_id, o.side, o.price, remaining, o.owner, o.book, o.seq))
        return Result(tuple(done), filled, remaining, True, None)

    def cancel(self, order_id: str) -> Resting | None:
        for r in self.rows:
            if r.order_id == order_id:
                self.rows.remove(r)
                return Resting(r.order_id, r.side, r.price, r.quantity, r.owner, r.book, r.seq)
        return None

    def replace(self, order_id: str, *, quantity: D | None, price: D | None, seq: int) -> Result | None:
        row = next((r for r in self.rows if r.order_id == order_id), None)
        if row is None:
            return None
        new_quantity = row.quantity if quantity is None else quantity
        new_price = row.price if price is None else price
        if new_price == row.price and new_quantity <= row.quantity:
            row.quantity = new_quantity
            return Result((), D(0), new_quantity, True, None)
        self.rows.remove(row)
        return self.submit(Incoming(order_id, row.side, new_quantity, new_price, row.owner, row.book, "GTC", seq))

    def orders(self) -> list[Resting]:
        return [
            Resting(r.order_id, r.side, r.price, r.quantity, r.owner, r.book, r.seq)
            for side in ("BUY", "SELL")
            for r in self._queue(side)
        ]
