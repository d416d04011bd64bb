"""Position arithmetic of risk/positions.apply_fill, table-driven: buy, add, reduce, close, flip (long and short)."""

from __future__ import annotations

from decimal import Decimal as D  # noqa: N817 - tables read better short

import pytest

from risk.positions import PositionState, apply_fill

CASES = [
    # name, (qty, avg, pnl) before, side, quantity, price, (qty, avg, pnl) after
    ("open_long", ("0", "0", "0"), "BUY", "10", "100", ("10", "100", "0")),
    ("add_long_averages", ("10", "100", "0"), "BUY", "10", "110", ("20", "105", "0")),
    ("reduce_long_realises", ("20", "105", "0"), "SELL", "5", "115", ("15", "105", "50")),
    ("reduce_long_at_loss", ("15", "105", "50"), "SELL", "5", "95", ("10", "105", "0")),
    ("close_long_resets_average", ("10", "105", "0"), "SELL", "10", "100", ("0", "0", "-50")),
    ("flip_long_to_short", ("10", "100", "0"), "SELL", "15", "120", ("-5", "120", "200")),
    ("open_short", ("0", "0", "7"), "SELL", "4", "50", ("-4", "50", "7")),
    ("add_short_averages", ("-4", "50", "0"), "SELL", "4", "60", ("-8", "55", "0")),
    ("reduce_short_realises", ("-8", "55", "0"), "BUY", "3", "45", ("-5", "55", "30")),
    ("close_short", ("-5", "55", "30"), "BUY", "5", "65", ("0", "0", "-20")),
    ("flip_short_to_long", ("-5", "55", "0"), "BUY", "8", "50", ("3", "50", "25")),
    ("average_rounds_to_8_places", ("3", "1", "0"), "BUY", "3", "2", ("6", "1.5", "0")),
    ("average_repeating_decimal", ("1", "1", "0"), "BUY", "2", "1.00000001", ("3", "1.00000001", "0")),
    ("fractional_quantities", ("0.5", "10", "0"), "SELL", "0.25", "12", ("0.25", "10", "0.5")),
]


@pytest.mark.parametrize(("name", "before", "side", "quantity", "price", "after"), CASES, ids=[c[0] for c in CASES])
def test_apply_fill_when_case_then_position_avg_and_pnl_as_table(name, before, side, quantity, price, after):
    state = PositionState(*(D(v) for v in before))
    new = apply_fill(state, side=side, quantity=D(quantity), price=D(price))
    assert (new.quantity, new.average_price, new.realized_pnl) == tuple(D(v) for v in after)


def test_apply_fill_sequence_when_round_trip_then_pnl_is_sum_of_legs():
    state = PositionState()
    for side, qty, px in [("BUY", "10", "100"), ("BUY", "10", "120"), ("SELL", "5", "130"), ("SELL", "15", "100")]:
        state = apply_fill(state, side=side, quantity=D(qty), price=D(px))
    # average 110; 5 sold at +20 = 100; 15 sold at -10 = -150
    assert state == PositionState(D(0), D(0), D(-50))
