"""Valuation at market, pure: what one unit of an instrument is worth in the reporting currency.

- Linear instruments (equities, futures, FX, crypto): price x multiplier x FX rate.
- Options count delta-adjusted: Black-Scholes delta (no rates, no dividends) x the underlying's price x
  multiplier x FX rate, with the instrument's volatility from reference data and the time to expiry in
  years of 365 days. An option whose underlying has no price yet is valued at its premium.
- FX: an instrument priced in currency C converts to the reporting currency R at the price of the pair `CR`
  (e.g. EURUSD for C = EUR, R = USD), or at 1 / the price of `RC`. A currency with neither pair priced has
  no rate: its instruments cannot be valued (the checks then refuse their orders as STALE_MARKET_DATA).

No Django: the feed, the price writer, the checks and the tests use it alike.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

ONE = Decimal(1)
PLACES = Decimal("0.0000000001")  # the Mark columns' ten decimal places


@dataclass(frozen=True, slots=True)
class Terms:
    """What valuation needs of an instrument."""

    symbol: str
    asset_class: str
    currency: str
    multiplier: Decimal = ONE
    underlying: str = ""
    strike: Decimal | None = None
    expiry: dt.date | None = None
    option_right: str = ""
    volatility: Decimal = Decimal(0)

    @property
    def is_option(self) -> bool:
        return self.asset_class == "OPTION"


def fx_rate(currency: str, reporting: str, last: Mapping[str, Decimal]) -> Decimal | None:
    """Units of `reporting` for one unit of `currency`, from the latest prices of the FX pairs; None if unknown."""
    if currency == reporting:
        return ONE
    direct = last.get(currency + reporting)
    if direct:
        return direct
    inverse = last.get(reporting + currency)
    if inverse:
        return (ONE / inverse).quantize(PLACES, ROUND_HALF_EVEN)
    return None


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def bs_delta(*, spot: float, strike: float, years: float, volatility: float, right: str) -> float:
    """Black-Scholes delta of one option on one unit of the underlying (rates and dividends zero). At or after
    expiry, or with no volatility, the delta is the intrinsic one: 1 / 0 for a call, -1 / 0 for a put."""
    call = right == "CALL"
    if years <= 0 or volatility <= 0 or spot <= 0 or strike <= 0:
        if call:
            return 1.0 if spot > strike else 0.0
        return -1.0 if spot < strike else 0.0
    d1 = (math.log(spot / strike) + 0.5 * volatility**2 * years) / (volatility * math.sqrt(years))
    return _normal_cdf(d1) if call else _normal_cdf(d1) - 1.0


def years_to(expiry: dt.date | None, today: dt.date) -> float:
    return 0.0 if expiry is None else max((expiry - today).days, 0) / 365.0


@dataclass(frozen=True, slots=True)
class Value:
    """`factor` turns a price of the instrument into money (multiplier x FX); `unit_value` is one unit's
    exposure in money (factor x price; for an option, delta x the underlying's price x factor); `delta` is
    the option's delta (1 for linear instruments)."""

    factor: Decimal
    unit_value: Decimal
    delta: Decimal = ONE


def value(terms: Terms, price: Decimal, last: Mapping[str, Decimal], *, reporting: str, today: dt.date) -> Value | None:
    """One unit of `terms` at `price`, with `last` the latest prices of the other instruments (FX pairs,
    underlyings). None when the currency has no FX rate."""
    rate = fx_rate(terms.currency, reporting, last)
    if rate is None:
        return None
    factor = (terms.multiplier * rate).quantize(PLACES, ROUND_HALF_EVEN)
    if not terms.is_option:
        return Value(factor, (price * factor).quantize(PLACES, ROUND_HALF_EVEN))
    spot = last.get(terms.underlying)
    if not spot or terms.strike is None:
        return Value(factor, (price * factor).quantize(PLACES, ROUND_HALF_EVEN))
    delta = Decimal(
        repr(
            bs_delta(
                spot=float(spot),
                strike=float(terms.strike),
                years=years_to(terms.expiry, today),
                volatility=float(terms.volatility),
                right=terms.option_right,
            )
        )
    ).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
    return Value(factor, (delta * spot * factor).quantize(PLACES, ROUND_HALF_EVEN), delta)
