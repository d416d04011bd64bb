"""Where prices come from: one adapter interface, and the simulated feed that `make run` starts.

The simulated feed walks each instrument's price in log space as an Ornstein-Uhlenbeck process pulled back
toward the instrument's `initial_price` (its anchor), so the demo market wanders but stays near the prices
the demo orders expect (a stationary standard deviation of about 0.5 %). Each cycle starts from the latest
price whatever its source (market.prices.latest), so a price pushed by an external feed is continued, not
overwritten by a path of the feed's own. Deterministic: one random.Random per instrument, seeded from the
feed's seed and the symbol, so the same seed and the same starting prices give the same path.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

from market import prices
from market.models import Instrument, InstrumentStatus
from market.prices import Quote

# The log-price's stationary standard deviation (0.5 % of the anchor) and how fast it is pulled back.
BAND = 0.005
HALF_LIFE_SECONDS = 60.0
QUOTED_STATUSES = (InstrumentStatus.ACTIVE, InstrumentStatus.RESTRICTED)


class MarketDataSource(Protocol):
    """Anything that produces quotes: the simulated feed here; an exchange or vendor adapter alike."""

    def quotes(self, now: dt.datetime) -> list[Quote]: ...


@dataclass(frozen=True, slots=True)
class Anchor:
    """What the walk needs of an instrument."""

    symbol: str
    tick: Decimal
    initial_price: Decimal | None


def to_tick(price: float, tick: Decimal) -> Decimal:
    """The nearest whole number of ticks, never below one tick."""
    ticks = (Decimal(repr(price)) / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return max(ticks, Decimal(1)) * tick


def ou_step(price: Decimal, anchor: Decimal, shock: float, *, step_seconds: float) -> float:
    """One step of the mean-reverting walk: the next log distance from the anchor, given a standard normal
    shock. Exact discretisation, so the spread is the same whatever the step (the feed's rate)."""
    kappa = math.log(2) / HALF_LIFE_SECONDS
    decay = math.exp(-kappa * step_seconds)
    x = math.log(float(price) / float(anchor))
    x = x * decay + BAND * math.sqrt(1 - decay * decay) * shock
    return float(anchor) * math.exp(x)


class SimulatedFeed:
    """A random walk per instrument (see the module's docstring). HALTED instruments get no quotes."""

    def __init__(
        self, *, seed: int = 42, step_seconds: float = 1.0, symbols: Sequence[str] | None = None, source: str = "sim"
    ) -> None:
        self.seed = seed
        self.step_seconds = step_seconds
        self.symbols = list(symbols) if symbols else None
        self.source = source
        self._rngs: dict[str, random.Random] = {}
        self._anchors: dict[str, Decimal] = {}

    def _rng(self, symbol: str) -> random.Random:
        rng = self._rngs.get(symbol)
        if rng is None:
            # A string seed is hashed with SHA-512, the same in every process (unlike hash()).
            rng = self._rngs[symbol] = random.Random(f"{self.seed}:{symbol}")
        return rng

    def instruments(self) -> list[Anchor]:
        rows = Instrument.objects.filter(status__in=QUOTED_STATUSES).order_by("symbol")
        if self.symbols is not None:
            rows = rows.filter(symbol__in=self.symbols)
        return [Anchor(s, t, p) for s, t, p in rows.values_list("symbol", "tick_size", "initial_price")]

    def quotes(self, now: dt.datetime) -> list[Quote]:
        anchors = self.instruments()
        held = prices.latest([a.symbol for a in anchors]) if anchors else {}
        return [q for a in anchors if (q := self.next_quote(a, held.get(a.symbol), now)) is not None]

    def next_quote(self, instrument: Anchor, held: Quote | None, now: dt.datetime) -> Quote | None:
        """The instrument's next quote from its latest one (None: its first price is its initial_price)."""
        tick = instrument.tick
        if held is None:
            if instrument.initial_price is None:
                return None  # no anchor and no price: nothing to walk from
            last = to_tick(float(instrument.initial_price), tick)
        else:
            # An instrument without an initial price reverts to the first price the feed saw.
            anchor = instrument.initial_price or self._anchors.setdefault(instrument.symbol, held.last)
            shock = self._rng(instrument.symbol).gauss(0.0, 1.0)
            last = to_tick(ou_step(held.last, anchor, shock, step_seconds=self.step_seconds), tick)
        bid = last - tick
        return Quote(
            symbol=instrument.symbol,
            last=last,
            timestamp=now,
            source=self.source,
            bid=bid if bid > 0 else None,
            ask=last + tick,
        )
