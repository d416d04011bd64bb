"""Stress scenarios as data, the grammar of a shock, and the historical replays found in the price history.

Pure (numpy only). A scenario is a set of shocks, each a key and a number:
- `asset_class:EQUITY` / `symbol:AAPL`: a relative price move (-0.10 = down 10 %) of linear instruments of
  that class or that symbol; an option moves with its underlying (revalued by Black-Scholes), so options
  are shocked through their underlying, `vol` and `rate`, never by price. The most specific key wins: a
  `symbol:` shock replaces its class's shock, they do not add up.
- `currency:USD`: that currency gains the given fraction against every other: an FX pair XY moves by
  (1 + s_X) / (1 + s_Y) - 1, and so does the rate that converts an instrument priced in X to the reporting
  currency.
- `vol`: an absolute change of every option's volatility (0.10 = ten points); `rate`: the interest rate
  options are revalued with (0.02 = 2 %; the platform values them at zero).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from analytics.engine import FloatArray

PRICE_CLASSES = ("EQUITY", "FUTURE", "FX", "CRYPTO")

# The named scenarios. The two historical replays' shocks are filled from the stored history
# (replay_shocks): the worst window of the equity basket over 20 trading days (a slow, broad 2008-style
# fall) and over 5 (a sudden 2020-style crash).
NAMED: tuple[dict[str, object], ...] = (
    {
        "name": "equity_crash",
        "description": "Equities and equity index futures down 20 %.",
        "shocks": {"asset_class:EQUITY": -0.20, "asset_class:FUTURE": -0.20},
    },
    {
        "name": "options_rates_vol",
        "description": "Option volatilities up 10 points and rates up to 2 %: options revalued by Black-Scholes.",
        "shocks": {"vol": 0.10, "rate": 0.02},
    },
    {
        "name": "usd_up_10",
        "description": "USD up 10 % against every other currency (FX pairs and foreign instruments).",
        "shocks": {"currency:USD": 0.10},
    },
    {
        "name": "crypto_crash",
        "description": "Crypto assets down 40 %.",
        "shocks": {"asset_class:CRYPTO": -0.40},
    },
)
REPLAYS = (
    (
        "replay_2008",
        20,
        "2008-style replay: every instrument's move over the worst 20 trading days of the equity basket",
    ),
    ("replay_2020", 5, "2020-style replay: every instrument's move over the worst 5 trading days of the equity basket"),
)


class ShockError(ValueError):
    """A shock that is not one: the message says which and why."""


@dataclass(frozen=True, slots=True)
class Leg:
    """What a shock needs to know of a holding: its instrument, and for an option its underlying's."""

    symbol: str
    asset_class: str
    currency: str
    underlying: str = ""
    underlying_class: str = ""

    @property
    def price_symbol(self) -> str:
        return self.underlying if self.asset_class == "OPTION" else self.symbol

    @property
    def price_class(self) -> str:
        return self.underlying_class if self.asset_class == "OPTION" else self.asset_class


def validate(shocks: Mapping[str, object], known_symbols: set[str]) -> dict[str, float]:
    """Shocks checked key by key: a known form, a known class or symbol, a number in range."""
    if not isinstance(shocks, Mapping) or not shocks:
        raise ShockError('shocks: give an object of at least one shock, e.g. {"asset_class:EQUITY": -0.10}')
    clean: dict[str, float] = {}
    for key, raw in shocks.items():
        if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
            raise ShockError(f"{key}: a number is required")
        try:
            value = float(raw)
        except ValueError:
            raise ShockError(f"{key}: a number is required") from None
        if not math.isfinite(value):
            raise ShockError(f"{key}: a finite number is required")
        kind, _, name = str(key).partition(":")
        if kind == "asset_class":
            if name not in PRICE_CLASSES:
                raise ShockError(
                    f"{key}: use one of {', '.join(PRICE_CLASSES)} (options move with their underlying, vol, rate)"
                )
        elif kind == "symbol":
            if name not in known_symbols:
                raise ShockError(f"{key}: no instrument {name!r}")
        elif kind == "currency":
            if len(name) != 3 or not name.isalpha() or not name.isupper():
                raise ShockError(f"{key}: a currency is three capital letters")
        elif key == "vol":
            if not -1.0 <= value <= 5.0:
                raise ShockError("vol: an absolute change of volatility between -1 and 5")
            clean[key] = value
            continue
        elif key == "rate":
            if not -0.2 <= value <= 1.0:
                raise ShockError("rate: between -0.2 and 1")
            clean[key] = value
            continue
        else:
            raise ShockError(f"{key}: use asset_class:<CLASS>, symbol:<SYMBOL>, currency:<CCY>, vol or rate")
        if not -1.0 < value <= 10.0:
            raise ShockError(f"{key}: a relative move above -1 (-100 %) and at most 10")
        clean[str(key)] = value
    return clean


def moves(
    legs: Sequence[Leg], shocks: Mapping[str, float], *, reporting: str
) -> tuple[FloatArray, FloatArray, float, float]:
    """Each leg's log move of its price factor and of its FX rate (one scenario: arrays of one row), the
    volatility shift and the rate."""
    price = np.zeros((1, len(legs)))
    fx = np.zeros((1, len(legs)))

    def ccy(code: str) -> float:
        return math.log1p(shocks.get(f"currency:{code}", 0.0))

    for i, leg in enumerate(legs):  # one pass over the positions to resolve keys, not over scenarios
        relative = shocks.get(f"symbol:{leg.price_symbol}", shocks.get(f"asset_class:{leg.price_class}", 0.0))
        move = math.log1p(relative)
        if leg.price_class == "FX" and len(leg.price_symbol) >= 6:
            # A pair XY (Y per X; Y its currency): X's gain raises it, Y's lowers it.
            move += ccy(leg.price_symbol[:3]) - ccy(leg.price_symbol[3:6])
        price[0, i] = move
        fx[0, i] = ccy(leg.currency) - ccy(reporting)
    return price, fx, float(shocks.get("vol", 0.0)), float(shocks.get("rate", 0.0))


def worst_window(basket: FloatArray, days: int) -> int | None:
    """The start index (into the log returns) of the `days`-day window with the lowest summed basket return,
    or None when the history is shorter than the window."""
    if basket.size < days:
        return None
    sums = np.convolve(basket, np.ones(days), mode="valid")
    return int(np.argmin(sums))
