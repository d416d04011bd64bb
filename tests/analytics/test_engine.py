"""The numeric core (analytics/engine.py, analytics/scenarios.py) against hand-computed and textbook cases.

No database: portfolios and return series are built by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analytics import engine, scenarios
from analytics.engine import Book, Holding

Z99 = stats.norm.ppf(0.99)


def one_stock(value: float = 1_000_000.0, price: float = 100.0) -> Book:
    return Book.of([Holding(quantity=value / price, price=price, price_factor=0)])


def normal_returns(sigma: float = 0.01, days: int = 500, seed: int = 1, factors: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sigma, size=(days, factors))


@pytest.mark.parametrize("horizon", [1, 10, 250])
def test_parametric_var_of_one_position_is_z_sigma_value_sqrt_h(horizon: int) -> None:
    returns = normal_returns(0.02)
    sigma = returns[:, 0].std(ddof=1)
    risk = engine.parametric(one_stock(), returns, confidence=0.99, horizon_days=horizon)
    assert risk.var == pytest.approx(Z99 * sigma * 1_000_000 * math.sqrt(horizon), rel=1e-9)
    # ES of the normal: sigma * phi(z) / (1 - c)
    expected_es = sigma * 1_000_000 * math.sqrt(horizon) * stats.norm.pdf(Z99) / 0.01
    assert risk.expected_shortfall == pytest.approx(expected_es, rel=1e-9)
    assert risk.observations == 500


def test_historical_var_of_a_known_return_series() -> None:
    # 100 daily simple returns: -1 %, -2 %, ..., -5 % and 95 days of +0.1 %. At 95 % the tail is
    # ceil(100 x 0.05) = 5 scenarios: VaR is the 5th largest loss (1 % of 1,000,000), ES their mean (3 %).
    simple = np.array([-0.01, -0.02, -0.03, -0.04, -0.05] + [0.001] * 95)
    returns = np.log1p(simple)[:, None]
    risk = engine.historical(one_stock(), returns, confidence=0.95)
    assert risk.var == pytest.approx(10_000.0)
    assert risk.expected_shortfall == pytest.approx(30_000.0)
    # At 99 %: one scenario, the worst.
    risk = engine.historical(one_stock(), returns, confidence=0.99)
    assert (risk.var, risk.expected_shortfall) == (pytest.approx(50_000.0), pytest.approx(50_000.0))


def test_historical_short_position_loses_on_the_rises() -> None:
    simple = np.array([0.04, 0.03] + [-0.001] * 98)
    book = Book.of([Holding(quantity=-10_000, price=100.0, price_factor=0)])
    risk = engine.historical(book, np.log1p(simple)[:, None], confidence=0.99)
    assert risk.var == pytest.approx(40_000.0)


def test_monte_carlo_is_within_its_standard_error_of_parametric_for_a_normal_portfolio() -> None:
    returns = normal_returns(0.005, factors=3, seed=3) @ np.array([[1, 0.5, 0.2], [0, 1, 0.3], [0, 0, 1]])
    book = Book.of([Holding(quantity=q, price=50.0, price_factor=i) for i, q in enumerate([1000, -400, 700])])
    para = engine.parametric(book, returns, confidence=0.99)
    mc = engine.monte_carlo(book, returns, confidence=0.99, paths=10_000, seed=11)
    sigma = para.var / Z99
    # Standard error of a sample quantile: sqrt(c (1 - c) / n) / phi(z), in sigmas.
    standard_error = sigma * math.sqrt(0.99 * 0.01 / 10_000) / stats.norm.pdf(Z99)
    assert abs(mc.var - para.var) < 3 * standard_error
    assert mc.paths == 10_000


def test_three_methods_agree_within_reason_on_a_normal_portfolio() -> None:
    returns = normal_returns(0.01, days=500, factors=2, seed=5)
    book = Book.of(
        [Holding(quantity=5000, price=100.0, price_factor=0), Holding(quantity=3000, price=80.0, price_factor=1)]
    )
    values = [engine.compute(m, book, returns, confidence=0.99).var for m in engine.METHODS]
    assert max(values) / min(values) < 1.2, values


def test_student_t_draws_have_fatter_tails_than_normal_at_high_confidence() -> None:
    returns = normal_returns(0.01)
    normal = engine.monte_carlo(one_stock(), returns, confidence=0.999, paths=20_000, seed=2)
    student = engine.monte_carlo(one_stock(), returns, confidence=0.999, paths=20_000, seed=2, distribution="student_t")
    assert student.var > normal.var


def test_monte_carlo_is_deterministic_for_a_seed() -> None:
    returns = normal_returns()
    a = engine.monte_carlo(one_stock(), returns, confidence=0.99, seed=4)
    b = engine.monte_carlo(one_stock(), returns, confidence=0.99, seed=4)
    assert a.var == b.var


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    low=st.floats(0.51, 0.99),
    gap=st.floats(0.0, 0.009),
    method=st.sampled_from(engine.METHODS),
)
def test_es_at_least_var_and_higher_confidence_never_lowers_var(seed: int, low: float, gap: float, method: str) -> None:
    returns = normal_returns(0.02, days=200, factors=2, seed=seed)
    book = Book.of(
        [Holding(quantity=100, price=10.0, price_factor=0), Holding(quantity=-50, price=20.0, price_factor=1)]
    )
    a = engine.compute(method, book, returns, confidence=low, paths=2000)
    b = engine.compute(method, book, returns, confidence=min(low + gap, 0.9998), paths=2000)
    assert a.expected_shortfall >= a.var >= 0
    assert b.var >= a.var
    assert b.expected_shortfall >= a.expected_shortfall


def test_empty_portfolio_has_zero_var() -> None:
    empty = Book.of([])
    for method in engine.METHODS:
        risk = engine.compute(method, empty, normal_returns(), confidence=0.99)
        assert (risk.var, risk.expected_shortfall) == (0.0, 0.0)


def test_fx_converted_position_moves_with_price_and_rate() -> None:
    # A EUR stock worth 100 EUR x 1.10 USD/EUR; the stock up 10 % and EUR down 10 %: P&L = 110 x (1.1 x 0.9 - 1).
    book = Book.of([Holding(quantity=1, price=100.0, fx=1.10, price_factor=0, fx_factor=1)])
    pnl = engine.holdings_pnl(book, np.log([[1.1]]), np.log([[0.9]]))
    assert pnl[0, 0] == pytest.approx(110 * (1.1 * 0.9 - 1))
    # A pair quoted the other way (USDJPY for a JPY instrument): the rate is 1 / price, its return negated.
    inverse = Book.of([Holding(quantity=1, price=100.0, fx=1 / 150, price_factor=0, fx_factor=1, fx_inverse=True)])
    returns = np.array([[0.0, math.log(1.5)]])  # USDJPY 150 -> 225: JPY lost a third
    assert engine.scenario_pnl(inverse, returns)[0] == pytest.approx(100 / 150 * (1 / 1.5 - 1))


def test_option_is_revalued_by_black_scholes() -> None:
    spot, strike, years, vol = 100.0, 100.0, 0.5, 0.2
    premium = float(
        engine.black_scholes(np.array(spot), np.array(strike), np.array(years), np.array(vol), np.array(True))
    )
    # Textbook at-the-money call, no rates: S (N(d1) - N(-d1)) with d1 = sigma sqrt(T) / 2.
    d1 = vol * math.sqrt(years) / 2
    assert premium == pytest.approx(spot * (stats.norm.cdf(d1) - stats.norm.cdf(-d1)))
    book = Book.of(
        [
            Holding(
                quantity=10,
                price=premium,
                multiplier=100,
                price_factor=0,
                option=True,
                spot=spot,
                strike=strike,
                years=years,
                volatility=vol,
            )
        ]
    )
    up = engine.holdings_pnl(book, np.log([[1.2]]), np.zeros((1, 1)))[0, 0]
    after = float(
        engine.black_scholes(np.array(120.0), np.array(strike), np.array(years), np.array(vol), np.array(True))
    )
    assert up == pytest.approx(10 * 100 * (after - premium))
    # Convex: a fall loses less than the same rise gains.
    down = engine.holdings_pnl(book, np.log([[0.8]]), np.zeros((1, 1)))[0, 0]
    assert -down < up
    # Volatility up raises the value of a long option.
    assert engine.holdings_pnl(book, np.zeros((1, 1)), np.zeros((1, 1)), vol_shift=0.1)[0, 0] > 0


def test_stress_pnl_of_linear_instruments_is_shock_times_exposure() -> None:
    legs = [
        scenarios.Leg("AAPL", "EQUITY", "USD"),
        scenarios.Leg("MSFT", "EQUITY", "USD"),
        scenarios.Leg("BTCUSD", "CRYPTO", "USD"),
        scenarios.Leg("SAP", "EQUITY", "EUR"),
    ]
    book = Book.of(
        [
            Holding(quantity=100, price=150.0),
            Holding(quantity=-50, price=300.0),
            Holding(quantity=2, price=60_000.0),
            Holding(quantity=10, price=175.0, fx=1.08),
        ]
    )
    shocks = {"asset_class:EQUITY": -0.10, "symbol:AAPL": -0.25, "asset_class:CRYPTO": -0.40}
    price, fx, vol, rate = scenarios.moves(legs, shocks, reporting="USD")
    pnl = engine.holdings_pnl(book, price, fx, vol_shift=vol, rate=rate)[0]
    exposure = book.value
    assert pnl == pytest.approx(exposure * np.array([-0.25, -0.10, -0.40, -0.10]))
    # USD up 10 %: a EUR position loses 1 - 1/1.1 of its value; USD instruments do not move.
    price, fx, _, _ = scenarios.moves(legs, {"currency:USD": 0.10}, reporting="USD")
    pnl = engine.holdings_pnl(book, price, fx)[0]
    assert pnl == pytest.approx(exposure * np.array([0, 0, 0, 1 / 1.1 - 1]))


def test_shock_keys_are_validated() -> None:
    known = {"AAPL"}
    assert scenarios.validate({"asset_class:EQUITY": -0.1, "symbol:AAPL": "-0.25"}, known) == {
        "asset_class:EQUITY": -0.1,
        "symbol:AAPL": -0.25,
    }
    for bad in (
        {},
        {"asset_class:BONDS": -0.1},
        {"asset_class:OPTION": -0.1},
        {"symbol:ZZZ": -0.1},
        {"symbol:AAPL": -1.0},
        {"symbol:AAPL": "x"},
        {"symbol:AAPL": True},
        {"nonsense": 0.1},
        {"vol": 9},
    ):
        with pytest.raises(scenarios.ShockError):
            scenarios.validate(bad, known)


def test_worst_window_finds_the_crash() -> None:
    basket = np.array([0.01, 0.0, -0.05, -0.04, 0.02, -0.01, 0.01])
    assert scenarios.worst_window(basket, 2) == 2
    assert scenarios.worst_window(basket, 20) is None


def test_log_returns_fill_gaps_and_keep_the_lookback() -> None:
    closes = np.array([[100.0, np.nan], [110.0, 50.0], [np.nan, 55.0], [121.0, 55.0]])
    returns = engine.log_returns(closes, lookback=2)
    assert returns.shape == (2, 2)
    assert returns[0] == pytest.approx([0.0, math.log(1.1)])
    assert returns[1] == pytest.approx([math.log(1.1), 0.0])


def test_tail_count_is_ceil_n_times_one_minus_c() -> None:
    assert engine.tail_count(500, 0.99) == 5
    assert engine.tail_count(500, 0.975) == 13
    assert engine.tail_count(100, 0.9999) == 1
