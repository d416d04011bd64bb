"""Orders decided at market (issue 15): the instrument checks, valuation with multiplier, FX and option delta,
the collar, stale prices and the day's loss limit. Pure checks table-driven; then the order path end to end
on the test market (tests/support/market.py: AAPL 148, MSFT 295, SAP 175 EUR, EURUSD 1.08, ESH7 5000 x 50,
an AAPL 150 call at 7.50 x 100)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from statistics import NormalDist
from typing import Any

import pytest
from django.utils import timezone

from market.models import Instrument, Mark
from orders.execution import execution_complete, execution_start
from orders.models import Order
from orders.submission import OrderRequest, order_submit
from orders.venue import Execution
from risk import checks, selectors
from risk.checks import Breach, Market, OrderIntent, Side, Violation
from risk.models import LimitScope, Position, RiskLimits
from tests.support.market import price

D = Decimal
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
EQUITY = Market(
    status="ACTIVE",
    tick_size=D("0.01"),
    lot_size=D(1),
    staleness_seconds=60,
    reference=D(148),
    reference_time=NOW - dt.timedelta(seconds=5),
    factor=D(1),
    unit_value=D(148),
)


def intent(**changes: Any) -> OrderIntent:
    values: dict[str, Any] = {"symbol": "AAPL", "side": Side.BUY, "quantity": D(100), "price": D("150.25")}
    values.update(changes)
    return OrderIntent(**values)


# --- the instrument checks, pure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("market", "order", "codes"),
    [
        (EQUITY, intent(), []),
        (None, intent(symbol="STRING"), [Violation.UNKNOWN_INSTRUMENT]),
        (Market(**{**EQUITY.__dict__, "status": "RESTRICTED"}), intent(), [Violation.INSTRUMENT_RESTRICTED]),
        (Market(**{**EQUITY.__dict__, "status": "HALTED"}), intent(), [Violation.TRADING_HALTED]),
        (EQUITY, intent(price=D("150.255")), [Violation.TICK_SIZE]),
        (EQUITY, intent(quantity=D("10.5")), [Violation.LOT_SIZE]),
        (EQUITY, intent(quantity=D("100000000000"), price=D("0.00000001")), [Violation.TICK_SIZE]),
        (
            Market(**{**EQUITY.__dict__, "reference_time": NOW - dt.timedelta(seconds=61)}),
            intent(),
            [Violation.STALE_MARKET_DATA],
        ),
        (Market(**{**EQUITY.__dict__, "reference_time": NOW - dt.timedelta(seconds=60)}), intent(), []),
        (
            Market(**{**EQUITY.__dict__, "reference": None, "reference_time": None}),
            intent(),
            [Violation.STALE_MARKET_DATA],
        ),
        (Market(**{**EQUITY.__dict__, "factor": None}), intent(), [Violation.STALE_MARKET_DATA]),  # no FX rate
    ],
)
def test_instrument_breaches_table(market, order, codes) -> None:
    found = checks.instrument_breaches(order, market, NOW)
    assert [b.code for b in found] == codes
    assert all(b.scope == f"symbol:{order.symbol}" for b in found)


@pytest.mark.parametrize(
    ("side", "order_price", "reference", "factor", "notional_price"),
    [
        (Side.BUY, "150.25", "148", "1", "150.25"),  # the order's price is the worse
        (Side.BUY, "100", "148", "1", "148"),  # a buy below the market is valued at the market
        (Side.SELL, "0.10", "148", "1", "148"),  # the 5M-at-0.10 sell can no longer hide its size
        (Side.SELL, "175", "148", "1.08", "189.00"),  # EUR instrument at EURUSD 1.08
        (Side.BUY, "5000", "5000", "50", "250000"),  # a future's multiplier
    ],
)
def test_market_values_the_worse_of_order_and_reference(side, order_price, reference, factor, notional_price) -> None:
    market = Market(**{**EQUITY.__dict__, "reference": D(reference), "factor": D(factor)})
    valued = market.value(intent(side=side, price=D(order_price)))
    assert valued.notional_price == D(notional_price) == valued.exposure_price
    assert valued.notional == valued.quantity * D(notional_price)


def test_option_exposure_is_delta_adjusted_and_its_notional_the_premium() -> None:
    option = Market(
        **{**EQUITY.__dict__, "reference": D("7.50"), "factor": D(100), "unit_value": D("7400"), "is_option": True}
    )
    valued = option.value(intent(symbol="AAPL-20270115-C150", price=D("7.50"), quantity=D(10)))
    assert valued.notional == D(7500) and valued.exposure == D(74000)


@pytest.mark.parametrize(
    ("collar", "order_price", "breach"),
    [
        ("10", "148", None),
        ("10", "162.80", None),
        ("10", "162.81", D("10.0068")),
        ("10", "133.19", D("10.0068")),
        ("40", "1480", D("900.0000")),
        ("40", "14.80", D("90.0000")),
    ],
)
def test_price_collar_in_percent_of_the_reference(collar, order_price, breach) -> None:
    snapshot = checks.RiskSnapshot(
        limits=checks.Limits(price_collar_pct=D(collar)),
        kill_switch_active=False,
        trading_day=NOW.date(),
        executed_volume=D(0),
        open_volume=D(0),
    )
    order = EQUITY.value(intent(price=D(order_price), quantity=D(1)))
    decision = checks.check_order(order, snapshot, NOW.date())
    found = [b for b in decision.breaches if b.code == Violation.PRICE_COLLAR]
    assert found == ([Breach(Violation.PRICE_COLLAR, "firm", D(collar), breach)] if breach is not None else [])


def test_halt_is_checked_before_the_instrument() -> None:
    view = checks.RiskSnapshot(
        limits=checks.Limits(), kill_switch_active=True, trading_day=NOW.date(), executed_volume=D(0), open_volume=D(0)
    )
    _, decision = checks.check_at_market(
        intent(symbol="STRING"), None, ("firm",), "firm", checks.ScopedSnapshot({"firm": view}), NOW
    )
    assert decision.kill_switch and decision.message == checks.KILL_SWITCH_MESSAGE


def test_daily_loss_limit_refuses_what_adds_risk_and_lets_a_reduction_through() -> None:
    book = checks.SymbolBook("AAPL", quantity=D(10), mark_price=D(130))
    losing = checks.RiskSnapshot(
        limits=checks.Limits(max_daily_loss=D(100)),
        kill_switch_active=False,
        trading_day=NOW.date(),
        executed_volume=D(0),
        open_volume=D(0),
        books=(book,),
        scope="book:MAIN",
        daily_pnl=D(-200),
    )
    snapshot = checks.ScopedSnapshot({"book:MAIN": losing})
    buy = checks.check_scoped(intent(quantity=D(1), price=D(130)), ("book:MAIN",), "book:MAIN", snapshot, NOW.date())
    assert buy.breaches == (Breach(Violation.DAILY_LOSS_LIMIT, "book:MAIN", D(100), D(200)),)
    sell = checks.check_scoped(
        intent(side=Side.SELL, quantity=D(5), price=D(130)), ("book:MAIN",), "book:MAIN", snapshot, NOW.date()
    )
    assert sell.approved


# --- the order path at market ---------------------------------------------------------------------------------


def submit(user: Any, **changes: Any) -> tuple[Order, checks.Decision]:
    data: dict[str, Any] = {"symbol": "AAPL", "side": "BUY", "quantity": D(100), "price": D("150.25")}
    data.update({k: D(str(v)) if k in ("quantity", "price") else v for k, v in changes.items()})
    return order_submit(user=user, request=OrderRequest(**data))


def fill(order: Order, at: str) -> None:
    execution_start(order_id=order.pk)
    execution_complete(order_id=order.pk, fill=Execution("SIM", f"T-{order.pk}", order.quantity, D(at)))


@pytest.mark.django_db
def test_unknown_symbol_is_refused_as_an_answer_not_an_error(trader, client_for) -> None:
    response = client_for(trader).post(
        "/api/v1/orders", {"symbol": "STRING", "side": "BUY", "quantity": 1, "price": 1}, format="json"
    )
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "REJECTED" and data["message"] == "Risk violations: UNKNOWN_INSTRUMENT"
    assert data["violations"] == [
        {"code": "UNKNOWN_INSTRUMENT", "scope": "symbol:STRING", "limit": None, "projected": None}
    ]


@pytest.mark.django_db
def test_a_restricted_instrument_is_refused_and_trades_again_when_active(trader) -> None:
    Instrument.objects.filter(symbol="AAPL").update(status="RESTRICTED")
    _, decision = submit(trader)
    assert decision.violations == (Violation.INSTRUMENT_RESTRICTED,)
    Instrument.objects.filter(symbol="AAPL").update(status="ACTIVE")
    assert submit(trader, client_order_id="again")[1].approved


@pytest.mark.django_db
def test_the_sell_of_five_million_at_ten_cents_is_valued_at_the_market(trader) -> None:
    order, decision = submit(trader, side="SELL", quantity=5_000_000, price="0.10")
    assert not decision.approved
    assert {Violation.POSITION_LIMIT, Violation.NET_EXPOSURE_LIMIT} <= set(decision.violations)
    position = next(b for b in decision.breaches if b.code == Violation.POSITION_LIMIT and b.scope == "firm")
    assert position.projected == D(5_000_000) * D(148)
    assert order.notional_price == D(148)


@pytest.mark.django_db
def test_tick_and_lot_are_checked(trader) -> None:
    assert submit(trader, quantity=100_000_000_000, price="0.00000001")[1].violations == (Violation.TICK_SIZE,)
    assert submit(trader, quantity="10.5", client_order_id="lot")[1].violations == (Violation.LOT_SIZE,)


@pytest.mark.django_db
def test_a_stale_or_missing_price_refuses_new_orders(trader) -> None:
    Mark.objects.filter(symbol="AAPL").update(timestamp=timezone.now() - dt.timedelta(seconds=61))  # the feed stopped
    order, decision = submit(trader)
    assert decision.violations == (Violation.STALE_MARKET_DATA,)
    assert decision.breaches[0].limit == 60 and decision.breaches[0].projected >= 61
    Instrument.objects.create(
        symbol="NOPX", name="never priced", asset_class="EQUITY", currency="USD", tick_size=D("0.01"), lot_size=D(1)
    )
    assert submit(trader, symbol="NOPX")[1].violations == (Violation.STALE_MARKET_DATA,)
    price("AAPL", 148)
    assert submit(trader, client_order_id="fresh")[1].approved


@pytest.mark.django_db
def test_default_collar_admits_the_v1_demo_prices_and_refuses_ten_times_off(trader, settings) -> None:
    settings.DEFAULT_PRICE_COLLAR_PCT = 40.0
    v1 = [
        ("AAPL", "150.50"),
        ("AAPL", "175.50"),
        ("MSFT", "300"),
        ("MSFT", "380"),
        ("GOOGL", "100"),
        ("TSLA", "200"),
        ("TSLA", "250"),
    ]
    for n, (symbol, at) in enumerate(v1):
        assert submit(trader, symbol=symbol, quantity=10, price=at, client_order_id=f"v1-{n}")[1].approved, symbol
    _, decision = submit(trader, quantity=10, price="1480", client_order_id="fat")
    assert decision.violations == (Violation.PRICE_COLLAR,)
    assert decision.breaches[0].scope == "firm" and decision.breaches[0].limit == D(40)
    assert submit(trader, quantity=10, price="14.80", client_order_id="thin")[1].violations == (Violation.PRICE_COLLAR,)


@pytest.mark.django_db
def test_a_symbol_scope_collar_is_a_limit_like_the_others(trader) -> None:
    RiskLimits.objects.create(scope=LimitScope.SYMBOL, scope_key="AAPL", price_collar_pct=D(5))
    _, decision = submit(trader, price="160")
    assert decision.breaches == (Breach(Violation.PRICE_COLLAR, "symbol:AAPL", D(5), D("8.1081")),)
    assert submit(trader, price="150", client_order_id="near")[1].approved


@pytest.mark.django_db
def test_futures_count_their_multiplier(trader) -> None:
    order, decision = submit(trader, symbol="ESH7", quantity=2, price="5000")
    assert decision.approved and order.exposure_price == D(250_000)
    assert Position.objects.get(scope="firm", symbol="ESH7").open_buy_notional == D(500_000)
    _, refused = submit(trader, symbol="ESH7", quantity=3, price="5000", client_order_id="more")
    assert Violation.POSITION_LIMIT in refused.violations  # 5 x 5000 x 50 = 1.25M over the 1M limit


@pytest.mark.django_db
def test_fx_converts_to_the_reporting_currency(trader) -> None:
    order, decision = submit(trader, symbol="SAP", quantity=100, price="175")
    assert decision.approved and order.notional_price == D("189.00")
    assert Position.objects.get(scope="firm", symbol="SAP").open_buy_notional == D(18_900)


@pytest.mark.django_db
def test_options_count_delta_adjusted(trader) -> None:
    symbol = "AAPL-20270115-C150"
    order, decision = submit(trader, symbol=symbol, quantity=10, price="7.50")
    years = (dt.date(2027, 1, 15) - timezone.now().date()).days / 365
    d1 = (math.log(148 / 150) + 0.5 * 0.25**2 * years) / (0.25 * math.sqrt(years))
    delta = NormalDist().cdf(d1)
    assert decision.approved and order.notional_price == D(750)
    assert float(order.exposure_price) == pytest.approx(delta * 148 * 100, rel=1e-5)


@pytest.mark.django_db
def test_positions_and_pnl_at_mark(trader, client_for) -> None:
    order, _ = submit(trader, symbol="ESH7", quantity=2, price="5000")
    fill(order, "5000")
    price("ESH7", "5010.25")
    (row,) = [p for p in selectors.positions_list() if p["symbol"] == "ESH7"]
    assert row["mark_price"] == D("5010.25") and row["market_value"] == D("501025.00")
    assert row["unrealized_pnl"] == D("1025.00")  # 2 x 10.25 x 50
    assert row["daily_pnl"] == D("1025.00")  # bought today: the day's P&L is all of it
    answer = client_for(trader).get("/api/v1/risk/metrics").json()
    assert answer["unrealized_pnl"] == 1025.0 and answer["daily_pnl"] == 1025.0


@pytest.mark.django_db
def test_daily_loss_limit_end_to_end(trader) -> None:
    RiskLimits.objects.create(scope=LimitScope.TRADER, scope_key=trader.username, max_daily_loss=D(100))
    order, _ = submit(trader, quantity=10, price="150")
    fill(order, "150")
    price("AAPL", "130")  # 10 x -20 = -200 today
    _, decision = submit(trader, quantity=1, price="130", client_order_id="more")
    assert decision.breaches == (Breach(Violation.DAILY_LOSS_LIMIT, f"trader:{trader.username}", D(100), D(200)),)
    assert submit(trader, side="SELL", quantity=5, price="130", client_order_id="cut")[1].approved


@pytest.mark.django_db
def test_realised_pnl_counts_the_multiplier(trader) -> None:
    buy, _ = submit(trader, symbol="ESH7", quantity=1, price="5000")
    fill(buy, "5000")
    price("ESH7", "5001")
    sell, _ = submit(trader, symbol="ESH7", side="SELL", quantity=1, price="5001")
    fill(sell, "5001")
    position = Position.objects.get(scope="firm", symbol="ESH7")
    assert position.realized_pnl == D(50) and position.day_realized_pnl == D(50)
    assert Mark.objects.get(symbol="ESH7").factor == D(50)


@pytest.mark.django_db
def test_the_firm_limits_show_the_collar_in_force(risk_manager, client_for, settings) -> None:
    settings.DEFAULT_PRICE_COLLAR_PCT = 40.0
    assert client_for(risk_manager).get("/api/v1/risk/limits/firm").json()["price_collar_pct"] == 40
    client_for(risk_manager).patch(
        "/api/v1/risk/limits/firm", {"price_collar_pct": 15, "reason": "tighter"}, format="json"
    )
    assert client_for(risk_manager).get("/api/v1/risk/limits/firm").json()["price_collar_pct"] == 15
