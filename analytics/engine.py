"""The numeric core of risk analytics, pure: VaR and expected shortfall by three methods, and revaluation.

numpy and scipy only (no Django, no I/O; the import contracts hold it). Floats inside; the callers turn the
answers into Decimal money at the edge.

A portfolio is a set of holdings (one per position: a book's quantity of one instrument). Each holding moves
with two risk factors, columns of a matrix of daily log returns: its price factor (the instrument itself;
an option's underlying) and, when its currency is not the reporting one, the FX pair that converts it (a
pair quoted the other way round, USDJPY for JPY, enters with the opposite sign). Column -1 is "no factor".

- Revaluation is full: linear holdings at price x exp(return); options by Black-Scholes on the moved
  underlying, with the time to expiry shortened by the horizon, their P&L the model's change added to the
  premium at mark.
- Horizon: a scenario's one-day log returns are scaled by sqrt(h) (square-root-of-time), so every method
  keeps all its scenarios at any horizon and prices stay positive.
- Historical simulation: the last `lookback` daily returns, each a scenario. Parametric: delta-normal,
  the same returns' covariance, mean zero. Monte Carlo: correlated normal (or Student-t, scaled to the same
  covariance) draws, seeded.
- VaR at confidence c over N scenarios is the k-th largest loss with k = ceil(N x (1 - c)); expected
  shortfall is the mean of those k largest losses. So ES >= VaR by construction, and a higher confidence
  (a smaller k) never lowers either. Both are floored at zero (a book that gains in every scenario).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

FloatArray = NDArray[np.float64]
Floats = NDArray[np.floating[Any]]  # float64 scenarios, or Monte Carlo's float32 draws
METHODS = ("historical", "parametric", "monte_carlo")
DISTRIBUTIONS = ("normal", "student_t")
DAYS_PER_YEAR = 365.0
CHUNK = 2_000  # Monte Carlo paths revalued at a time: bounds memory at 1,000 holdings x 10,000 paths


@dataclass(frozen=True, slots=True)
class Holding:
    """One position as the engine values it. `price` is the mark in the instrument's currency, `fx` the
    reporting currency's units per unit of it now. Options: `spot` the underlying's price, `years` to expiry."""

    quantity: float
    price: float
    multiplier: float = 1.0
    fx: float = 1.0
    price_factor: int = -1
    fx_factor: int = -1
    fx_inverse: bool = False
    option: bool = False
    spot: float = 0.0
    strike: float = 0.0
    years: float = 0.0
    volatility: float = 0.0
    call: bool = True


@dataclass(frozen=True, slots=True)
class Book:
    """Holdings as arrays (one entry each), built once per computation."""

    quantity: FloatArray
    price: FloatArray
    multiplier: FloatArray
    fx: FloatArray
    price_factor: NDArray[np.intp]
    fx_factor: NDArray[np.intp]
    fx_sign: FloatArray
    option: NDArray[np.bool_]
    spot: FloatArray
    strike: FloatArray
    years: FloatArray
    volatility: FloatArray
    call: NDArray[np.bool_]

    @classmethod
    def of(cls, holdings: Sequence[Holding]) -> Book:
        def col(name: str, dtype: type = np.float64) -> NDArray:
            return np.array([getattr(h, name) for h in holdings], dtype=dtype)

        return cls(
            quantity=col("quantity"),
            price=col("price"),
            multiplier=col("multiplier"),
            fx=col("fx"),
            price_factor=col("price_factor", np.intp),
            fx_factor=col("fx_factor", np.intp),
            fx_sign=np.where(col("fx_inverse", np.bool_), -1.0, 1.0),
            option=col("option", np.bool_),
            spot=col("spot"),
            strike=col("strike"),
            years=col("years"),
            volatility=col("volatility"),
            call=col("call", np.bool_),
        )

    def __len__(self) -> int:
        return len(self.quantity)

    def take(self, index: NDArray[np.intp]) -> Book:
        """The holdings at `index`, as a Book of their own."""
        return Book(**{f: getattr(self, f)[index] for f in self.__dataclass_fields__})

    @property
    def value(self) -> FloatArray:
        """Market value of each holding in the reporting currency."""
        return self.quantity * self.multiplier * self.price * self.fx


@dataclass(frozen=True, slots=True)
class Risk:
    var: float
    expected_shortfall: float
    observations: int
    paths: int | None = None
    pnl: FloatArray | None = None  # the scenarios' P&L (historical, Monte Carlo), for a histogram


def black_scholes(
    spot: FloatArray, strike: FloatArray, years: FloatArray, vol: FloatArray, call: NDArray[np.bool_], rate: float = 0.0
) -> FloatArray:
    """Black-Scholes price (no dividends), broadcasting; at expiry or with no volatility, the intrinsic value
    (discounted strike)."""
    spot, strike, years, vol = np.broadcast_arrays(spot, strike, years, vol)
    disc = strike * np.exp(-rate * years)
    live = (years > 0) & (vol > 0) & (spot > 0)
    sig = vol * np.sqrt(np.where(live, years, 1.0))
    sig = np.where(live, sig, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(np.where(spot > 0, spot, 1.0) / strike) + (rate + 0.5 * vol * vol) * years) / sig
    d2 = d1 - sig
    call_value = np.where(live, spot * special.ndtr(d1) - disc * special.ndtr(d2), np.maximum(spot - disc, 0.0))
    put_value = np.where(live, disc * special.ndtr(-d2) - spot * special.ndtr(-d1), np.maximum(disc - spot, 0.0))
    return np.where(call, call_value, put_value)


def _bs_delta(book: Book) -> FloatArray:
    live = (book.years > 0) & (book.volatility > 0) & (book.spot > 0) & (book.strike > 0)
    sig = np.where(live, book.volatility * np.sqrt(np.where(live, book.years, 1.0)), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(np.where(live, book.spot / np.where(live, book.strike, 1.0), 1.0)) + 0.5 * sig * sig) / sig
    itm_call = (book.spot > book.strike).astype(np.float64)
    itm_put = -(book.spot < book.strike).astype(np.float64)
    call = np.where(live, special.ndtr(d1), itm_call)
    put = np.where(live, special.ndtr(d1) - 1.0, itm_put)
    return np.where(book.call, call, put)


def holdings_pnl(
    book: Book,
    price_moves: FloatArray,
    fx_moves: FloatArray,
    *,
    horizon_days: float = 0.0,
    vol_shift: float | FloatArray = 0.0,
    rate: float = 0.0,
) -> FloatArray:
    """P&L of each holding (columns) in each scenario (rows), in the reporting currency, given the log moves
    of its price factor and its FX rate (scenarios x holdings). Options are revalued by Black-Scholes with
    their volatility shifted by `vol_shift` (absolute), the rate `rate`, and `horizon_days` less to run."""
    growth = np.exp(price_moves)
    fx_growth = np.exp(fx_moves)
    base = book.quantity * book.multiplier * book.fx
    pnl = base * book.price * (growth * fx_growth - 1.0)
    if book.option.any():
        o = np.flatnonzero(book.option)
        vol = book.volatility[o]
        before = black_scholes(book.spot[o], book.strike[o], book.years[o], vol, book.call[o])
        shifted = np.maximum(vol + (vol_shift[o] if isinstance(vol_shift, np.ndarray) else vol_shift), 0.0)
        years = np.maximum(book.years[o] - horizon_days / DAYS_PER_YEAR, 0.0)
        after = black_scholes(book.spot[o] * growth[:, o], book.strike[o], years, shifted, book.call[o], rate)
        premium = np.maximum(book.price[o] + after - before, 0.0)
        pnl[:, o] = base[o] * (fx_growth[:, o] * premium - book.price[o])
    return pnl


def _gather(returns: Floats, columns: NDArray[np.intp]) -> Floats:
    """returns[:, columns] with column -1 reading zeros (no factor)."""
    padded = np.concatenate([returns, np.zeros((returns.shape[0], 1), dtype=returns.dtype)], axis=1)
    return padded[:, np.where(columns < 0, returns.shape[1], columns)]


def scenario_pnl(book: Book, returns: Floats, *, horizon_days: int = 1) -> FloatArray:
    """The portfolio's total P&L in each scenario of one-day log `returns` (scenarios x factors), scaled to
    the horizon by sqrt(h).

    Linear holdings need no scenarios x holdings matrix: their values are summed per price factor, once per
    FX rate they convert at (a handful: one per foreign currency), and P&L = expm1(moves) @ values, with the
    currency's move applied to the sum as (1 + g) x moved + g x value. expm1 keeps the small P&L of a large
    book exact in float32. Options are revalued one by one (by column), by Black-Scholes."""
    scenarios = returns.shape[0]
    total = np.zeros(scenarios)
    if len(book) == 0 or scenarios == 0:
        return total
    scaled = returns * np.asarray(math.sqrt(horizon_days), dtype=returns.dtype)
    factors = returns.shape[1]
    linear = ~book.option
    if linear.any():
        growth = np.expm1(scaled)
        value = book.value
        for fx_factor, sign in {
            (int(f), float(g)) for f, g in zip(book.fx_factor[linear], book.fx_sign[linear], strict=True)
        }:
            chosen = linear & (book.fx_factor == fx_factor) & (book.fx_sign == sign)
            priced = chosen & (book.price_factor >= 0)
            weights = np.zeros(factors, dtype=returns.dtype)
            np.add.at(weights, book.price_factor[priced], value[priced])
            moved = (growth @ weights).astype(np.float64)  # a holding without history does not move by price
            if fx_factor < 0:
                total += moved
            else:
                rate = np.expm1(sign * scaled[:, fx_factor].astype(np.float64))
                total += (1.0 + rate) * moved + rate * float(value[chosen].sum())
    if book.option.any():
        options = book.take(np.flatnonzero(book.option))
        moves = _gather(scaled, options.price_factor).astype(np.float64)
        fx = _gather(scaled, options.fx_factor).astype(np.float64) * options.fx_sign
        total += holdings_pnl(options, moves, fx, horizon_days=horizon_days).sum(axis=1)
    return total


def tail_count(scenarios: int, confidence: float) -> int:
    """How many of the worst scenarios lie beyond the VaR: ceil(N x (1 - c)), at least one."""
    return max(1, math.ceil(round(scenarios * (1.0 - confidence), 9)))


def tail(pnl: FloatArray, confidence: float) -> tuple[float, float]:
    """(VaR, ES) of scenario P&Ls: the k-th largest loss and the mean of the k largest (floored at zero)."""
    if pnl.size == 0:
        return 0.0, 0.0
    k = tail_count(pnl.size, confidence)
    worst = -np.partition(pnl, k - 1)[:k]  # the k lowest P&Ls = the k largest losses
    var = max(float(worst.min()), 0.0)
    return var, max(float(worst.mean()), var)


def historical(book: Book, returns: FloatArray, *, confidence: float, horizon_days: int = 1) -> Risk:
    pnl = scenario_pnl(book, returns, horizon_days=horizon_days)
    var, es = tail(pnl, confidence)
    return Risk(var, es, returns.shape[0], pnl=pnl)


def sensitivities(book: Book, factors: int) -> FloatArray:
    """The portfolio's first-order P&L per unit log move of each factor (its dollar delta)."""
    value = book.value
    price_delta = value.copy()
    if book.option.any():
        o = book.option
        price_delta[o] = (book.quantity * book.multiplier * book.fx * _bs_delta(book) * book.spot)[o]
    delta = np.zeros(factors + 1)
    np.add.at(delta, np.where(book.price_factor < 0, factors, book.price_factor), price_delta)
    np.add.at(delta, np.where(book.fx_factor < 0, factors, book.fx_factor), value * book.fx_sign)
    return delta[:factors]


def parametric(book: Book, returns: FloatArray, *, confidence: float, horizon_days: int = 1) -> Risk:
    """Delta-normal: sigma_P = sqrt(d' S d) of the same daily returns (mean zero), VaR = z sigma_P sqrt(h),
    ES = sigma_P sqrt(h) phi(z) / (1 - c)."""
    observations = returns.shape[0]
    if len(book) == 0 or observations < 2:
        return Risk(0.0, 0.0, observations)
    delta = sensitivities(book, returns.shape[1])
    covariance = np.atleast_2d(np.cov(returns, rowvar=False))
    sigma = math.sqrt(max(float(delta @ covariance @ delta), 0.0)) * math.sqrt(horizon_days)
    z = float(stats.norm.ppf(confidence))
    return Risk(z * sigma, sigma * float(stats.norm.pdf(z)) / (1.0 - confidence), observations)


def _factor_loadings(returns: FloatArray) -> FloatArray:
    """A matrix L (k x factors) with L'L = the returns' covariance: the centred returns themselves when there
    are fewer scenarios than factors, else the covariance's symmetric square root (k = factors)."""
    centred = returns - returns.mean(axis=0)
    scenarios, factors = returns.shape
    if scenarios <= factors:
        return centred / math.sqrt(scenarios - 1)
    values, vectors = np.linalg.eigh(np.atleast_2d(np.cov(returns, rowvar=False)))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))).T


def monte_carlo(
    book: Book,
    returns: FloatArray,
    *,
    confidence: float,
    horizon_days: int = 1,
    paths: int = 10_000,
    seed: int = 7,
    distribution: str = "normal",
    df: float = 5.0,
) -> Risk:
    """Correlated draws with the daily returns' covariance (mean zero): normal, or Student-t with `df`
    degrees of freedom scaled to the same covariance; each path revalued fully like a historical scenario."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}: use one of {', '.join(DISTRIBUTIONS)}")
    observations = returns.shape[0]
    if len(book) == 0 or observations < 2:
        return Risk(0.0, 0.0, observations, paths=paths, pnl=np.zeros(0))
    # float32 draws: twice the speed of float64 for the matrix product, and the P&L stays exact enough
    # (expm1 in scenario_pnl; the sums are float64).
    loadings = _factor_loadings(returns).astype(np.float32)
    rng = np.random.default_rng(seed)
    pnl = np.empty(paths)
    for start in range(0, paths, CHUNK):  # bounded memory; each chunk is itself vectorised
        n = min(CHUNK, paths - start)
        draws = rng.standard_normal((n, loadings.shape[0]), dtype=np.float32) @ loadings
        if distribution == "student_t":
            draws *= np.sqrt((df - 2.0) / rng.chisquare(df, size=(n, 1))).astype(np.float32)
        pnl[start : start + n] = scenario_pnl(book, draws, horizon_days=horizon_days)
    var, es = tail(pnl, confidence)
    return Risk(var, es, observations, paths=paths, pnl=pnl)


def compute(
    method: str,
    book: Book,
    returns: FloatArray,
    *,
    confidence: float,
    horizon_days: int = 1,
    paths: int = 10_000,
    seed: int = 7,
    distribution: str = "normal",
) -> Risk:
    if method == "historical":
        return historical(book, returns, confidence=confidence, horizon_days=horizon_days)
    if method == "parametric":
        return parametric(book, returns, confidence=confidence, horizon_days=horizon_days)
    if method == "monte_carlo":
        return monte_carlo(
            book,
            returns,
            confidence=confidence,
            horizon_days=horizon_days,
            paths=paths,
            seed=seed,
            distribution=distribution,
        )
    raise ValueError(f"unknown method {method!r}")


def log_returns(closes: FloatArray, lookback: int) -> FloatArray:
    """Daily log returns (days x factors) of a closes matrix (days x factors, oldest first, NaN where a
    factor has no close yet), the last `lookback` of them. A close missing inside a series carries the last
    one forward; a factor before its first close moves by zero."""
    if closes.shape[0] < 2:
        return np.zeros((0, closes.shape[1]))
    # Forward fill, vectorised: each cell takes the close of the latest day at or before it that has one.
    days = np.where(np.isnan(closes), 0, np.arange(closes.shape[0])[:, None])
    filled = closes[np.maximum.accumulate(days, axis=0), np.arange(closes.shape[1])]
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = np.diff(np.log(filled), axis=0)
    moves = np.nan_to_num(moves, nan=0.0, posinf=0.0, neginf=0.0)
    return moves[-lookback:]


def histogram(pnl: FloatArray, bins: int = 40) -> tuple[list[int], list[float]]:
    """Counts and edges of the P&L distribution."""
    if pnl.size == 0:
        return [], []
    counts, edges = np.histogram(pnl, bins=bins)
    return [int(c) for c in counts], [float(e) for e in edges]
