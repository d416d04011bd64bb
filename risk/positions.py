"""Pure position arithmetic: how a fill changes quantity, average price and realised P&L."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
PLACES = Decimal("0.00000001")  # the columns' 8 decimal places: replay must compute the same digits


@dataclass(frozen=True)
class PositionState:
    quantity: Decimal = ZERO
    average_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO


def apply_fill(state: PositionState, *, side: str, quantity: Decimal, price: Decimal) -> PositionState:
    """Buy adds, sell subtracts. Adding to a position averages the price; reducing realises P&L at the
    average price; a trade through zero closes the old side and opens the other at the fill price."""
    signed = quantity if side == "BUY" else -quantity
    qty, avg, pnl = state.quantity, state.average_price, state.realized_pnl
    if qty == 0 or (qty > 0) == (signed > 0):
        new_qty = qty + signed
        new_avg = ((abs(qty) * avg + quantity * price) / abs(new_qty)).quantize(PLACES, ROUND_HALF_EVEN)
        return PositionState(new_qty, new_avg, pnl)
    closing = min(abs(qty), quantity)
    direction = Decimal(1) if qty > 0 else Decimal(-1)
    pnl = (pnl + closing * (price - avg) * direction).quantize(PLACES, ROUND_HALF_EVEN)
    new_qty = qty + signed
    if new_qty == 0:
        return PositionState(ZERO, ZERO, pnl)
    if (new_qty > 0) != (qty > 0):  # flipped through zero: the remainder opens at the fill price
        return PositionState(new_qty, price, pnl)
    return PositionState(new_qty, avg, pnl)
