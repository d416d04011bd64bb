"""The pure pre-trade checks (risk/checks.py): table-driven edges, and a property over order sequences.

No database: these tests build frozen snapshots by hand and call check_order directly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal as D  # noqa: N817 - the tables read better with a short name

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk.checks import (
    KILL_SWITCH_MESSAGE,
    Decision,
    Limits,
    OrderIntent,
    RiskSnapshot,
    Side,
    SymbolBook,
    Violation,
    check_order,
)

TODAY = dt.date(2026, 3, 2)
YESTERDAY = TODAY - dt.timedelta(days=1)
SEED_LIMITS = Limits(
    max_position_size=D("1000000"),
    max_daily_volume=D("10000000"),
    max_net_exposure=D("5000000"),
    max_gross_exposure=D("15000000"),
)
POS, VOL, NET, GROSS = (
    Violation.POSITION_LIMIT,
    Violation.DAILY_VOLUME_LIMIT,
    Violation.NET_EXPOSURE_LIMIT,
    Violation.GROSS_EXPOSURE_LIMIT,
)


def buy(symbol: str, quantity: str, price: str) -> OrderIntent:
    return OrderIntent(symbol=symbol, side=Side.BUY, quantity=D(quantity), price=D(price))


def sell(symbol: str, quantity: str, price: str) -> OrderIntent:
    return OrderIntent(symbol=symbol, side=Side.SELL, quantity=D(quantity), price=D(price))


def held(symbol: str, quantity: str, mark: str) -> SymbolBook:
    """A filled position valued at its mark (last fill price)."""
    return SymbolBook(symbol=symbol, quantity=D(quantity), mark_price=D(mark))


def opened(symbol: str, *, buy: tuple[str, str] | None = None, sell: tuple[str, str] | None = None) -> SymbolBook:
    """A symbol with no position, only open orders: (quantity, price) of the open buys and sells."""
    bq, bp = buy or ("0", "0")
    sq, sp = sell or ("0", "0")
    return SymbolBook(
        symbol=symbol,
        open_buy_quantity=D(bq),
        open_buy_notional=D(bq) * D(bp),
        open_sell_quantity=D(sq),
        open_sell_notional=D(sq) * D(sp),
    )


def snap(
    *books: SymbolBook,
    limits: Limits = SEED_LIMITS,
    kill: bool = False,
    executed: str = "0",
    open_volume: str = "0",
    day: dt.date = TODAY,
) -> RiskSnapshot:
    return RiskSnapshot(
        limits=limits,
        kill_switch_active=kill,
        trading_day=day,
        executed_volume=D(executed),
        open_volume=D(open_volume),
        books=tuple(books),
    )


def lowered(**changes: str) -> Limits:
    values = {name: getattr(SEED_LIMITS, name) for name in Limits.__dataclass_fields__}
    values.update({name: D(value) for name, value in changes.items()})
    return Limits(**values)


@dataclass(frozen=True)
class Case:
    intent: OrderIntent
    snapshot: RiskSnapshot
    violations: tuple[Violation, ...] = ()
    kill_switch: bool = False

    @property
    def approved(self) -> bool:
        return not self.violations and not self.kill_switch


CASES: dict[str, Case] = {
    # --- every limit passes ---------------------------------------------------------------------------
    "test_order_when_within_every_limit_then_approved": Case(buy("AAPL", "100", "150"), snap()),
    # --- position size: |projected position in the order's symbol| at the order price ------------------
    "test_order_when_projected_position_exactly_at_limit_then_approved": Case(buy("AAPL", "10000", "100"), snap()),
    "test_order_when_projected_position_one_cent_over_limit_then_rejected": Case(
        buy("AAPL", "1", "1000000.01"), snap(), (POS,)
    ),
    "test_order_when_projected_position_over_limit_then_rejected": Case(buy("AAPL", "10001", "100"), snap(), (POS,)),
    "test_order_when_held_position_plus_order_exactly_at_limit_then_approved": Case(
        buy("AAPL", "1000", "100"), snap(held("AAPL", "9000", "100"))
    ),
    "test_order_when_held_position_plus_order_over_limit_then_rejected": Case(
        buy("AAPL", "1001", "100"), snap(held("AAPL", "9000", "100")), (POS,)
    ),
    "test_order_when_short_position_exactly_at_limit_then_approved": Case(sell("AAPL", "10000", "100"), snap()),
    "test_order_when_projected_short_position_over_limit_then_rejected": Case(
        sell("AAPL", "10001", "100"), snap(), (POS,)
    ),
    "test_order_when_held_position_valued_at_order_price_over_limit_then_rejected": Case(
        # at its mark (50) the position plus order would be 550,100; at the order price it is 1,000,100
        buy("AAPL", "1001", "100"),
        snap(held("AAPL", "9000", "50")),
        (POS,),
    ),
    # --- open orders count until they end --------------------------------------------------------------
    "test_order_when_open_buys_plus_order_over_position_limit_then_rejected": Case(
        buy("AAPL", "1001", "100"), snap(opened("AAPL", buy=("9000", "100")), open_volume="900000"), (POS,)
    ),
    "test_order_when_open_buys_plus_order_exactly_at_position_limit_then_approved": Case(
        buy("AAPL", "1000", "100"), snap(opened("AAPL", buy=("9000", "100")), open_volume="900000")
    ),
    "test_order_when_open_sells_plus_order_over_short_limit_then_rejected": Case(
        sell("AAPL", "1001", "100"), snap(opened("AAPL", sell=("9000", "100")), open_volume="900000"), (POS,)
    ),
    "test_order_when_open_buys_and_sells_then_each_side_checked_alone": Case(
        # open buys and sells do not net out: if only the buys fill, the long side is 1,000,100
        buy("AAPL", "5001", "100"),
        snap(opened("AAPL", buy=("5000", "100"), sell=("5000", "100")), open_volume="1000000"),
        (POS,),
    ),
    "test_order_when_open_orders_in_other_symbols_bring_net_exactly_to_limit_then_approved": Case(
        buy("MSFT", "10000", "100"),
        snap(*(opened(s, buy=("10000", "100")) for s in ("A", "B", "C", "D")), open_volume="4000000"),
    ),
    "test_order_when_open_orders_in_other_symbols_push_net_one_cent_over_then_rejected": Case(
        buy("MSFT", "1", "1000000.01"),
        snap(*(opened(s, buy=("10000", "100")) for s in ("A", "B", "C", "D")), open_volume="4000000"),
        (POS, NET),
    ),
    # --- daily volume: executed today + open orders + this order ---------------------------------------
    "test_order_when_daily_volume_exactly_at_limit_then_approved": Case(
        buy("AAPL", "1000", "100"), snap(executed="9000000", open_volume="900000")
    ),
    "test_order_when_daily_volume_one_cent_over_limit_then_rejected": Case(
        buy("AAPL", "1", "100000.01"), snap(executed="9000000", open_volume="900000"), (VOL,)
    ),
    "test_order_when_open_orders_fill_the_daily_volume_then_rejected": Case(
        buy("AAPL", "1", "1"), snap(open_volume="10000000"), (VOL,)
    ),
    "test_order_when_executed_volume_is_from_yesterday_then_it_does_not_count": Case(
        buy("AAPL", "10000", "100"), snap(executed="9999999", day=YESTERDAY)
    ),
    "test_order_when_yesterdays_open_orders_still_open_then_they_count": Case(
        buy("AAPL", "1", "1.01"), snap(executed="5000000", open_volume="9999999", day=YESTERDAY), (VOL,)
    ),
    "test_order_when_reducing_but_over_daily_volume_then_rejected": Case(
        # volume is turnover: selling what is held still trades
        sell("AAPL", "100", "100"),
        snap(held("AAPL", "100", "100"), executed="9999999.99"),
        (VOL,),
    ),
    # --- net exposure: worst signed sum, other symbols at their marks, this one at the order price ------
    "test_order_when_net_exposure_exactly_at_limit_then_approved": Case(
        buy("MSFT", "10000", "100"),
        snap(*(held(s, "10000", "100") for s in ("A", "B", "C", "D"))),
    ),
    "test_order_when_net_exposure_one_cent_over_limit_then_rejected": Case(
        buy("MSFT", "1", "0.01"),
        snap(*(held(s, "10000", "100") for s in ("A", "B", "C", "D", "E"))),
        (NET,),
    ),
    "test_order_when_short_net_exposure_one_cent_over_limit_then_rejected": Case(
        sell("MSFT", "1", "0.01"),
        snap(*(held(s, "-10000", "100") for s in ("A", "B", "C", "D", "E"))),
        (NET,),
    ),
    "test_order_when_new_symbol_valued_at_order_price_pushes_net_over_then_rejected": Case(
        # the reference implementation valued a first order in a new symbol at 0; here it is the order price
        buy("NEWCO", "1000", "100.01"),
        snap(held("A", "49000", "100")),
        (NET,),
    ),
    "test_order_when_new_symbol_valued_at_order_price_exactly_at_net_limit_then_approved": Case(
        buy("NEWCO", "1000", "100"), snap(held("A", "49000", "100"))
    ),
    "test_order_when_order_offsets_net_exposure_then_approved": Case(
        sell("MSFT", "10000", "100"), snap(*(held(s, "10000", "100") for s in ("A", "B", "C", "D", "E")))
    ),
    # --- gross exposure: sum of absolute worst values -------------------------------------------------
    "test_order_when_gross_exposure_exactly_at_limit_then_approved": Case(
        sell("D", "10000", "100"),
        snap(held("A", "50000", "100"), held("B", "-50000", "100"), held("C", "40000", "100")),
    ),
    "test_order_when_gross_exposure_one_cent_over_limit_then_rejected": Case(
        sell("D", "10000", "100"),
        snap(held("A", "50000", "100"), held("B", "-50000", "100"), held("C", "40000.0001", "100")),
        (GROSS,),
    ),
    # --- all violations collected, in a fixed order ----------------------------------------------------
    "test_order_when_every_limit_is_broken_then_all_four_violations_reported": Case(
        buy("AAPL", "60000", "100"),
        snap(held("A", "50000", "100"), held("B", "-50000", "100"), executed="9500000"),
        (POS, VOL, NET, GROSS),
    ),
    "test_order_when_position_and_volume_broken_then_both_reported": Case(
        buy("AAPL", "20000", "100"), snap(executed="9000000"), (POS, VOL)
    ),
    # --- kill switch: first and alone ------------------------------------------------------------------
    "test_order_when_kill_switch_active_then_rejected_even_if_within_limits": Case(
        buy("AAPL", "1", "1"), snap(kill=True), kill_switch=True
    ),
    "test_order_when_kill_switch_active_and_limits_broken_then_only_kill_switch_reported": Case(
        buy("AAPL", "60000", "100"),
        snap(held("A", "50000", "100"), held("B", "-50000", "100"), executed="9500000", kill=True),
        kill_switch=True,
    ),
    # --- an order that reduces risk is never refused for a limit the book is already over -------------
    "test_order_when_reducing_position_over_lowered_limit_then_approved": Case(
        sell("AAPL", "5000", "100"), snap(held("AAPL", "20000", "100"), limits=lowered(max_position_size="1000000"))
    ),
    "test_order_when_increasing_position_over_lowered_limit_then_rejected": Case(
        buy("AAPL", "1", "100"), snap(held("AAPL", "20000", "100")), (POS,)
    ),
    "test_order_when_reducing_short_over_lowered_limit_then_approved": Case(
        buy("AAPL", "5000", "100"), snap(held("AAPL", "-20000", "100"))
    ),
    "test_order_when_reducing_order_flips_position_beyond_current_size_then_rejected": Case(
        sell("AAPL", "45000", "100"), snap(held("AAPL", "20000", "100")), (POS,)
    ),
    "test_order_when_reducing_net_over_lowered_net_limit_then_approved": Case(
        sell("A", "1000", "100"),
        snap(held("A", "10000", "100"), held("B", "10000", "100"), limits=lowered(max_net_exposure="1000000")),
    ),
    "test_order_when_reducing_gross_over_lowered_gross_limit_then_approved": Case(
        buy("B", "1000", "100"),
        snap(held("A", "10000", "100"), held("B", "-10000", "100"), limits=lowered(max_gross_exposure="1000000")),
    ),
    "test_order_when_offsetting_in_other_symbol_over_lowered_gross_limit_then_rejected": Case(
        # a hedge in another symbol lowers net but adds gross: gross is over its lowered limit and grows
        sell("B", "1000", "100"),
        snap(held("A", "10000", "100"), limits=lowered(max_gross_exposure="1000000")),
        (GROSS,),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_check_order_table(case: Case) -> None:
    decision = check_order(case.intent, case.snapshot, TODAY)
    assert decision.approved is case.approved
    assert decision.kill_switch is case.kill_switch
    assert decision.violations == case.violations
    if case.kill_switch:
        assert decision.message == KILL_SWITCH_MESSAGE
        assert decision.projected is None, "the kill switch short-circuits: no limit is even measured"
    elif case.violations:
        assert decision.message == "Risk violations: " + ", ".join(v.value for v in case.violations)
    else:
        assert decision.message == "Order approved - all pre-trade risk checks passed"


def test_order_when_every_limit_is_broken_then_message_names_all_four_in_order() -> None:
    case = CASES["test_order_when_every_limit_is_broken_then_all_four_violations_reported"]
    assert check_order(case.intent, case.snapshot, TODAY).message == (
        "Risk violations: POSITION_LIMIT, DAILY_VOLUME_LIMIT, NET_EXPOSURE_LIMIT, GROSS_EXPOSURE_LIMIT"
    )


def test_order_when_measured_then_projected_and_current_measures_are_reported() -> None:
    snapshot = snap(held("A", "1000", "10"), held("B", "-500", "20"), opened("C", buy=("10", "5")), executed="700")
    decision = check_order(buy("A", "100", "12"), snapshot, TODAY)
    assert decision.approved
    # A at the order price: before 1000*12, after 1100*12; B at its mark -10,000; C's open buy +50 or 0
    assert decision.current is not None and decision.projected is not None
    assert decision.current.position == D("12000")
    assert decision.projected.position == D("13200")
    assert decision.projected.daily_volume == D("700") + D("1200")
    # worst long: A 13,200 - B 10,000 + C 50; worst short: A 12,000 - B 10,000 + C 0
    assert decision.projected.net_exposure == max(abs(D("13200") - D("10000") + D("50")), abs(D("12000") - D("10000")))
    assert decision.projected.gross_exposure == D("13200") + D("10000") + D("50")


def test_order_when_checked_then_snapshot_is_not_mutated() -> None:
    # The reference implementation mutated live positions while projecting; frozen inputs stay equal.
    snapshot = snap(held("AAPL", "100", "10"), opened("MSFT", buy=("5", "10")))
    before = repr(snapshot)
    check_order(buy("AAPL", "50", "11"), snapshot, TODAY)
    check_order(sell("MSFT", "50", "11"), snapshot, TODAY)
    assert repr(snapshot) == before


# --------------------------------------------------------------------------------------------------------
# Property: whatever the sequence of submissions, fills (at the order price), cancels, failures and new
# UTC days, an order book driven by check_order never commits more worst-case exposure or volume than the
# limits allow. Each symbol trades at one price, so the worst case has one valuation that is the check's own.
# --------------------------------------------------------------------------------------------------------

SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
PROPERTY_LIMITS = Limits(
    max_position_size=D("100000"),
    max_daily_volume=D("400000"),
    max_net_exposure=D("150000"),
    max_gross_exposure=D("250000"),
)


@dataclass
class OpenOrder:
    symbol: str
    side: Side
    quantity: D
    price: D


@dataclass
class Book:
    """The small pure model: filled positions, open orders, the day's executed volume."""

    prices: dict[str, D]
    positions: dict[str, D] = field(default_factory=dict)
    marked: set[str] = field(default_factory=set)
    orders: list[OpenOrder] = field(default_factory=list)
    day: dt.date = TODAY
    volume_day: dt.date = TODAY
    executed: D = D(0)

    def snapshot(self, limits: Limits) -> RiskSnapshot:
        books = []
        for symbol in SYMBOLS:
            mine = [o for o in self.orders if o.symbol == symbol]
            buys = [o for o in mine if o.side == Side.BUY]
            sells = [o for o in mine if o.side == Side.SELL]
            books.append(
                SymbolBook(
                    symbol=symbol,
                    quantity=self.positions.get(symbol, D(0)),
                    mark_price=self.prices[symbol] if symbol in self.marked else None,
                    open_buy_quantity=sum((o.quantity for o in buys), D(0)),
                    open_buy_notional=sum((o.quantity * o.price for o in buys), D(0)),
                    open_sell_quantity=sum((o.quantity for o in sells), D(0)),
                    open_sell_notional=sum((o.quantity * o.price for o in sells), D(0)),
                )
            )
        return RiskSnapshot(
            limits=limits,
            kill_switch_active=False,
            trading_day=self.volume_day,
            executed_volume=self.executed,
            open_volume=sum((o.quantity * o.price for o in self.orders), D(0)),
            books=tuple(books),
        )

    def worst_case(self) -> tuple[dict[str, D], D, D, D]:
        """Committed worst case, valued at each symbol's price: any subset of open orders may fill."""
        values = {}
        for symbol in SYMBOLS:
            qty = self.positions.get(symbol, D(0))
            buys = sum((o.quantity for o in self.orders if o.symbol == symbol and o.side == Side.BUY), D(0))
            sells = sum((o.quantity for o in self.orders if o.symbol == symbol and o.side == Side.SELL), D(0))
            values[symbol] = ((qty + buys) * self.prices[symbol], (qty - sells) * self.prices[symbol])
        position = {s: max(abs(lo), abs(hi)) for s, (hi, lo) in values.items()}
        net = max(abs(sum(hi for hi, _ in values.values())), abs(sum(lo for _, lo in values.values())))
        gross = sum(position.values(), D(0))
        executed_today = self.executed if self.volume_day == self.day else D(0)
        volume = executed_today + sum((o.quantity * o.price for o in self.orders), D(0))
        return position, net, gross, volume

    def submit(self, symbol: str, side: Side, quantity: D) -> Decision:
        intent = OrderIntent(symbol=symbol, side=side, quantity=quantity, price=self.prices[symbol])
        decision = check_order(intent, self.snapshot(PROPERTY_LIMITS), self.day)
        if decision.approved:
            self.orders.append(OpenOrder(symbol, side, quantity, intent.price))
        return decision

    def fill(self, index: int) -> None:
        order = self.orders.pop(index)
        signed = order.quantity if order.side == Side.BUY else -order.quantity
        self.positions[order.symbol] = self.positions.get(order.symbol, D(0)) + signed
        self.marked.add(order.symbol)
        if self.volume_day != self.day:
            self.volume_day, self.executed = self.day, D(0)
        self.executed += order.quantity * order.price

    def end(self, index: int) -> None:
        """A cancel or a final failure: the order ends unfilled and its reservation is released."""
        self.orders.pop(index)


STEP = st.one_of(
    st.tuples(
        st.just("submit"), st.sampled_from(SYMBOLS), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 3000)
    ),
    st.tuples(st.just("fill"), st.integers(0, 1000)),
    st.tuples(st.just("cancel"), st.integers(0, 1000)),
    st.tuples(st.just("fail"), st.integers(0, 1000)),
    st.tuples(st.just("new_day")),
)
PRICES = st.fixed_dictionaries(
    {s: st.decimals(min_value=D("0.01"), max_value=D("250"), places=2, allow_nan=False) for s in SYMBOLS}
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prices=PRICES, steps=st.lists(STEP, min_size=1, max_size=80))
def test_property_committed_exposure_and_volume_never_exceed_limits(prices: dict[str, D], steps: list[tuple]) -> None:
    book = Book(prices=prices)
    limits = PROPERTY_LIMITS
    approved = 0
    for step in steps:
        kind = step[0]
        if kind == "submit":
            _, symbol, side, quantity = step
            decision = book.submit(symbol, side, D(quantity))
            if decision.approved:
                approved += 1
                position, net, gross, volume = book.worst_case()
                # the check measured exactly what the book now commits to
                assert decision.projected is not None
                assert decision.projected.position == position[symbol]
                assert decision.projected.net_exposure == net
                assert decision.projected.gross_exposure == gross
                assert decision.projected.daily_volume == volume
        elif kind == "new_day":
            book.day += dt.timedelta(days=1)
        elif book.orders:
            index = step[1] % len(book.orders)
            book.fill(index) if kind == "fill" else book.end(index)
        position, net, gross, volume = book.worst_case()
        assert max(position.values()) <= limits.max_position_size, (step, position)
        assert volume <= limits.max_daily_volume, (step, volume)
        assert net <= limits.max_net_exposure, (step, net)
        assert gross <= limits.max_gross_exposure, (step, gross)


@settings(max_examples=200, deadline=None)
@given(
    prices=PRICES,
    orders=st.lists(
        st.tuples(st.sampled_from(SYMBOLS), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 3000)),
        min_size=1,
        max_size=40,
    ),
)
def test_property_an_order_refused_alone_is_refused_with_more_open_orders(
    prices: dict[str, D], orders: list[tuple[str, Side, int]]
) -> None:
    """Adding open orders never turns a refusal into an approval for volume or position on the same side."""
    empty = Book(prices=prices)
    for symbol, side, quantity in orders:
        intent = OrderIntent(symbol=symbol, side=side, quantity=D(quantity), price=prices[symbol])
        alone = check_order(intent, empty.snapshot(PROPERTY_LIMITS), TODAY)
        busy = Book(prices=prices, orders=[OpenOrder(symbol, side, D(quantity), prices[symbol])])
        crowded = check_order(intent, busy.snapshot(PROPERTY_LIMITS), TODAY)
        if VOL in alone.violations:
            assert VOL in crowded.violations
        if POS in alone.violations:
            assert POS in crowded.violations
