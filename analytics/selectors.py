"""Analytics reads: a scope's positions as the engine's holdings with their price history, and the figures
(VaR, stress, P&L) the API and the back office show. Nothing here writes."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from analytics import engine, scenarios
from analytics.engine import FloatArray
from analytics.models import VarSnapshot
from analytics.scenarios import Leg
from books.models import Book as BookRow
from market import directory
from market.models import Bar, BarInterval, Mark
from market.valuation import Terms, years_to
from risk.models import Position
from risk.scopes import Scope
from risk.selectors import risk_metrics

CENT = Decimal("0.01")


def money(value: float) -> Decimal:
    return Decimal(repr(round(value, 2))).quantize(CENT)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A proposed order for the what-if: its signed quantity is added to the scope's positions."""

    side: str
    symbol: str
    quantity: Decimal

    @property
    def signed(self) -> Decimal:
        return self.quantity if self.side == "BUY" else -self.quantity


@dataclass
class Portfolio:
    """A scope's holdings (one per book and symbol; a trader's per symbol), the risk factors they move with
    and those factors' daily log returns (scenarios x factors), oldest first."""

    scope: Scope
    books: list[str | None]
    legs: list[Leg]
    holdings: list[engine.Holding]
    factors: list[str]
    returns: FloatArray
    days: list[dt.date]
    as_of: dt.datetime
    currency: str
    closes: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def book(self) -> engine.Book:
        return engine.Book.of(self.holdings)


def scope_quantities(scope: Scope) -> list[tuple[str | None, str, Decimal]]:
    """(book, symbol, quantity) of a scope's open positions: the book rows of the firm, a desk, a book or a
    symbol (so stress P&L is attributed to books); a trader's own rows (kept per trader, not per book)."""
    rows = Position.objects.exclude(quantity=0)
    if scope.kind == "trader":
        return [
            (None, s, q) for s, q in rows.filter(scope=str(scope)).order_by("symbol").values_list("symbol", "quantity")
        ]
    rows = rows.filter(scope__startswith="book:")
    if scope.kind == "book":
        rows = rows.filter(scope=str(scope))
    elif scope.kind == "desk":
        codes = BookRow.objects.filter(desk__code=scope.key).values_list("code", flat=True)
        rows = rows.filter(scope__in=[f"book:{c}" for c in codes])
    elif scope.kind == "symbol":
        rows = rows.filter(symbol=scope.key)
    return [
        (s.removeprefix("book:"), sym, q)
        for s, sym, q in rows.order_by("scope", "symbol").values_list("scope", "symbol", "quantity")
    ]


@dataclass(frozen=True, slots=True)
class History:
    """Daily closes of many instruments read once (the scheduled run measures many scopes over one history)."""

    closes: FloatArray
    days: list[dt.date]
    symbols: list[str]

    @classmethod
    def load(cls, symbols: list[str], lookback: int, now: dt.datetime) -> History:
        return cls(*_closes(sorted(symbols), lookback, now))

    def of(self, symbols: list[str]) -> tuple[FloatArray, list[dt.date], list[str]]:
        column = {s: i for i, s in enumerate(self.symbols)}
        missing = np.full((len(self.days), 1), np.nan)
        # closes is days x symbols whenever there are symbols, with no day too (0 x n): only with no symbol
        # at all is it a bare (0, 0). A symbol the history lacks picks the NaN column after the others.
        padded = np.concatenate([self.closes, missing], axis=1) if self.symbols else missing
        picked = padded[:, [column.get(s, len(self.symbols)) for s in symbols]]
        return picked, self.days, symbols


def portfolio(
    scope: Scope,
    *,
    extra: OrderIntent | None = None,
    lookback: int | None = None,
    now: dt.datetime | None = None,
    history: History | None = None,
) -> Portfolio:
    """Everything a VaR or stress run of `scope` needs, read once: positions, instruments, marks, history
    (`history` when the caller read it already for every instrument)."""
    now = now or timezone.now()
    lookback = lookback or settings.ANALYTICS_LOOKBACK_DAYS
    reporting = settings.REPORTING_CURRENCY
    quantities = scope_quantities(scope)
    if extra is not None:
        quantities.append((scope.key if scope.kind == "book" else None, extra.symbol, extra.signed))
    terms = directory.all_terms()
    held = [(b, s, q) for b, s, q in quantities if s in terms]
    needed = {s for _, s, _ in held}
    needed |= {terms[s].underlying for s in needed if terms[s].is_option and terms[s].underlying}
    pairs = {}
    for symbol in list(needed):
        currency = terms[symbol].currency
        if currency != reporting and currency not in pairs:
            pairs[currency] = (
                (currency + reporting, False) if currency + reporting in terms else (reporting + currency, True)
            )
    needed |= {pair for pair, _ in pairs.values()}
    last = {m.symbol: float(m.last) for m in Mark.objects.filter(symbol__in=needed)}
    if history is not None:
        closes, days, factors = history.of(sorted(needed))
    else:
        closes, days, factors = _closes(sorted(needed), lookback, now)
    for i, symbol in enumerate(factors):  # no mark yet: the last close stands in
        if symbol not in last and closes.shape[0] and not math.isnan(closes[-1, i]):
            last[symbol] = float(closes[-1, i])
    column = {s: i for i, s in enumerate(factors)}
    books: list[str | None] = []
    legs: list[Leg] = []
    holdings: list[engine.Holding] = []
    for book, symbol, quantity in held:
        t = terms[symbol]
        fx, fx_factor, inverse = _fx(t.currency, reporting, pairs, last, column)
        price = last.get(symbol)
        if price is None or fx is None:
            continue  # never priced: nothing to value it with (the platform refuses its orders too)
        books.append(book)
        legs.append(_leg(t, terms))
        holdings.append(_holding(t, float(quantity), price, fx, fx_factor, inverse, column, last, now.date()))
    returns = engine.log_returns(closes, lookback)
    return Portfolio(
        scope=scope,
        books=books,
        legs=legs,
        holdings=holdings,
        factors=factors,
        returns=returns,
        days=days[-returns.shape[0] :] if returns.shape[0] else [],
        as_of=now,
        currency=reporting,
        closes=closes,
    )


def _fx(
    currency: str,
    reporting: str,
    pairs: Mapping[str, tuple[str, bool]],
    last: Mapping[str, float],
    column: Mapping[str, int],
) -> tuple[float | None, int, bool]:
    if currency == reporting:
        return 1.0, -1, False
    pair, inverse = pairs[currency]
    rate = last.get(pair)
    if not rate:
        return None, -1, False
    return (1.0 / rate if inverse else rate), column.get(pair, -1), inverse


def _leg(t: Terms, terms: Mapping[str, Terms]) -> Leg:
    under = terms.get(t.underlying) if t.is_option else None
    return Leg(t.symbol, t.asset_class, t.currency, t.underlying, under.asset_class if under else "")


def _holding(
    t: Terms,
    quantity: float,
    price: float,
    fx: float,
    fx_factor: int,
    inverse: bool,
    column: Mapping[str, int],
    last: Mapping[str, float],
    today: dt.date,
) -> engine.Holding:
    common = {
        "quantity": quantity,
        "price": price,
        "multiplier": float(t.multiplier),
        "fx": fx,
        "fx_factor": fx_factor,
        "fx_inverse": inverse,
    }
    spot = last.get(t.underlying) if t.is_option else None
    if not t.is_option or spot is None or t.strike is None:
        # An option whose underlying has no price moves as a linear instrument (the platform values it at
        # its premium then too).
        return engine.Holding(**common, price_factor=column.get(t.symbol, -1))  # type: ignore[arg-type]
    return engine.Holding(
        **common,  # type: ignore[arg-type]
        price_factor=column.get(t.underlying, -1),
        option=True,
        spot=spot,
        strike=float(t.strike),
        years=years_to(t.expiry, today),
        volatility=float(t.volatility),
        call=t.option_right == "CALL",
    )


def _closes(symbols: list[str], lookback: int, now: dt.datetime) -> tuple[FloatArray, list[dt.date], list[str]]:
    """Daily closes (days x symbols, NaN where a symbol has none that day) of the last lookback + 1 days with
    any bar, oldest first."""
    if not symbols:
        return np.zeros((0, 0)), [], []
    # Weekdays only: lookback + 1 trading days fit in 1.5 x as many calendar days, with room for holidays.
    since = now - dt.timedelta(days=int((lookback + 1) * 1.5) + 10)
    rows = list(
        Bar.objects.filter(symbol__in=symbols, interval=BarInterval.DAY, start__gte=since, start__lte=now)
        .order_by("start")
        .values_list("symbol", "start", "close")
    )
    days = sorted({start.date() for _, start, _ in rows})[-(lookback + 1) :]
    row_of = {d: i for i, d in enumerate(days)}
    col_of = {s: i for i, s in enumerate(symbols)}
    closes = np.full((len(days), len(symbols)), np.nan)
    for symbol, start, close in rows:
        r = row_of.get(start.date())
        if r is not None:
            closes[r, col_of[symbol]] = float(close)
    return closes, days, symbols


@dataclass(frozen=True, slots=True)
class VarFigures:
    scope: str
    method: str
    confidence: float
    horizon_days: int
    var: Decimal
    expected_shortfall: Decimal
    as_of: dt.datetime
    observations: int
    paths: int | None
    pnl: FloatArray | None = None


def var_of(p: Portfolio, *, method: str, confidence: float, horizon_days: int, paths: int | None = None) -> VarFigures:
    risk = engine.compute(
        method,
        p.book,
        p.returns,
        confidence=confidence,
        horizon_days=horizon_days,
        paths=paths or settings.ANALYTICS_MC_PATHS,
        seed=settings.ANALYTICS_MC_SEED,
        distribution=settings.ANALYTICS_MC_DISTRIBUTION,
    )
    return VarFigures(
        scope=str(p.scope),
        method=method,
        confidence=confidence,
        horizon_days=horizon_days,
        var=money(risk.var),
        expected_shortfall=money(risk.expected_shortfall),
        as_of=p.as_of,
        observations=risk.observations,
        paths=risk.paths,
        pnl=risk.pnl,
    )


def var_answer(
    scope: Scope, *, method: str, confidence: float, horizon_days: int, with_order: OrderIntent | None = None
) -> dict[str, Any]:
    """GET /risk/var: the scope's VaR and ES; with an order, also its VaR with the order and the difference."""
    figures = var_of(portfolio(scope), method=method, confidence=confidence, horizon_days=horizon_days)
    answer: dict[str, Any] = {
        "scope": figures.scope,
        "method": method,
        "confidence": confidence,
        "horizon_days": horizon_days,
        "var": figures.var,
        "expected_shortfall": figures.expected_shortfall,
        "as_of": figures.as_of,
        "observations": figures.observations,
        "paths": figures.paths,
        "currency": settings.REPORTING_CURRENCY,
    }
    if with_order is not None:
        after = var_of(
            portfolio(scope, extra=with_order), method=method, confidence=confidence, horizon_days=horizon_days
        )
        answer["var_with_order"] = after.var
        answer["incremental_var"] = after.var - figures.var
    return answer


def scenarios_list(*, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The named scenarios, the historical replays with their shocks taken from the stored history."""
    named = [dict(s) for s in scenarios.NAMED]
    return named + replays(now=now)


def scenario_shocks(name: str) -> dict[str, float] | None:
    """A named scenario's shocks (None if there is none of that name); the history is read for a replay only."""
    for named in scenarios.NAMED:
        if named["name"] == name:
            return dict(named["shocks"])  # type: ignore[call-overload]
    if name in {replay[0] for replay in scenarios.REPLAYS}:
        return next(dict(r["shocks"]) for r in replays() if r["name"] == name)
    return None


def replays(*, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Each replay: every priced instrument's move over the worst window (of its length) of the equal-weighted
    equity basket in the stored daily history."""
    now = now or timezone.now()
    terms = directory.all_terms()
    symbols = sorted(s for s, t in terms.items() if not t.is_option)
    closes, days, _ = _closes(symbols, settings.ANALYTICS_LOOKBACK_DAYS, now)
    returns = engine.log_returns(closes, settings.ANALYTICS_LOOKBACK_DAYS)
    day_list = days[-returns.shape[0] :] if returns.shape[0] else []
    equity = [i for i, s in enumerate(symbols) if terms[s].asset_class == "EQUITY"]
    has_history = ~np.all(returns == 0, axis=0) if returns.size else np.zeros(len(symbols), dtype=bool)
    basket_cols = [i for i in equity if has_history[i]]
    out = []
    for name, window, description in scenarios.REPLAYS:
        start = scenarios.worst_window(returns[:, basket_cols].mean(axis=1), window) if basket_cols else None
        if start is None:
            out.append(
                {"name": name, "description": f"{description}. No stored history long enough yet.", "shocks": {}}
            )
            continue
        moved = np.expm1(returns[start : start + window].sum(axis=0))
        shocks = {f"symbol:{s}": round(float(moved[i]), 6) for i, s in enumerate(symbols) if has_history[i]}
        span = f"{day_list[start]} to {day_list[start + window - 1]}"
        out.append({"name": name, "description": f"{description} ({span}).", "shocks": shocks})
    return out


def stress_answer(p: Portfolio, shocks: Mapping[str, float]) -> dict[str, Any]:
    """POST /risk/stress: each position's P&L under the shocks and the total, in the reporting currency."""
    price, fx, vol, rate = scenarios.moves(p.legs, shocks, reporting=p.currency)
    book = p.book
    pnl = engine.holdings_pnl(book, price, fx, vol_shift=vol, rate=rate)[0] if len(book) else np.zeros(0)
    positions = [
        {"book": b, "symbol": leg.symbol, "quantity": Decimal(repr(h.quantity)), "pnl": money(float(v))}
        for b, leg, h, v in zip(p.books, p.legs, p.holdings, pnl, strict=True)
    ]
    return {
        "scope": str(p.scope),
        "pnl": money(float(pnl.sum())),
        "currency": p.currency,
        "as_of": p.as_of,
        "positions": positions,
    }


def pnl_answer(scope: Scope) -> dict[str, Any]:
    """GET /risk/pnl: the same P&L at market as GET /risk/metrics (risk.selectors)."""
    metrics = risk_metrics(scope)
    return {
        "scope": str(scope),
        "realized_pnl": metrics["realized_pnl"],
        "unrealized_pnl": metrics["unrealized_pnl"],
        "daily_pnl": metrics["daily_pnl"],
        "currency": settings.REPORTING_CURRENCY,
        "as_of": metrics["timestamp"],
    }


def var_history(scope: Scope, *, now: dt.datetime | None = None) -> list[VarSnapshot]:
    """The scope's VaR snapshots of the UTC day, oldest first."""
    now = now or timezone.now()
    start = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return list(VarSnapshot.objects.filter(scope=str(scope), taken_at__gte=start).order_by("taken_at"))
