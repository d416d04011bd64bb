"""Fills obey the order (issue 15): the simulated venue fills a marketable limit order at the market plus
slippage, never worse than the limit, and leaves a non-marketable one unfilled."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders.venue import SimulatedVenue, VenueNotMarketable, VenueOrder

D = Decimal
prices = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2, allow_nan=False, allow_infinity=False)


class Memory:
    """The venue's memory of executions, in this process (the property test runs no Redis)."""

    def __init__(self) -> None:
        self.known: dict[str, object] = {}

    def recall(self, order_id: str):  # noqa: ANN201
        return self.known.get(order_id)

    def remember(self, order_id: str, execution):  # noqa: ANN001, ANN201
        self.known[order_id] = execution
        return execution

    def next_index(self, counter: str) -> int:
        return 0

    def call_opened(self, order_id: str):  # noqa: ANN201
        return self.known.get(order_id), False

    def calls(self) -> int:
        return 0

    def mark(self, kind: str, order_id: str) -> bool:
        return False

    def marked(self, kind: str, order_id: str) -> bool:
        return False


def venue(market: Decimal | None, slippage: str, seed: str) -> SimulatedVenue:
    return SimulatedVenue(
        latency_ms=0,
        success_probability=1.0,
        max_slippage=slippage,
        seed=seed,
        memory=Memory(),
        quotes=lambda order: market,
    )


@settings(max_examples=400, deadline=None)
@given(
    side=st.sampled_from(["BUY", "SELL"]),
    limit=prices,
    market=prices,
    slippage=st.sampled_from(["0", "0.001", "0.01", "0.1"]),
    seed=st.text(min_size=1, max_size=8),
)
def test_a_limit_order_never_fills_worse_than_its_limit(side, limit, market, slippage, seed) -> None:
    order = VenueOrder(order_id="o-1", symbol="AAPL", side=side, quantity=D(10), price=limit)
    marketable = limit >= market if side == "BUY" else limit <= market
    if not marketable:
        with pytest.raises(VenueNotMarketable):
            venue(market, slippage, seed).execute(order, timeout=1)
        return
    execution = venue(market, slippage, seed).execute(order, timeout=1)
    if side == "BUY":
        assert market <= execution.price <= limit  # slippage only against the buyer, capped at the limit
    else:
        assert limit <= execution.price <= market
    assert execution.quantity == order.quantity


def test_without_a_market_price_the_order_fills_at_its_limit_or_better_for_the_venue() -> None:
    order = VenueOrder(order_id="o-2", symbol="AAPL", side="BUY", quantity=D(1), price=D(100))
    assert venue(None, "0.01", "s").execute(order, timeout=1).price == D(100)


@pytest.mark.django_db
def test_the_venue_reads_the_platforms_latest_price() -> None:
    from tests.support.market import price

    price("AAPL", "148.00")
    real = SimulatedVenue(latency_ms=0, success_probability=1.0, max_slippage="0", seed="s", memory=Memory())
    below = VenueOrder(order_id="o-3", symbol="AAPL", side="BUY", quantity=D(1), price=D("140"))
    with pytest.raises(VenueNotMarketable) as info:
        real.execute(below, timeout=1)
    assert info.value.market is not None and info.value.market >= D("148")
    above = VenueOrder(order_id="o-4", symbol="AAPL", side="BUY", quantity=D(1), price=D("150"))
    assert real.execute(above, timeout=1).price <= D("150")
