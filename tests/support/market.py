"""The market the tests trade in: the demo's instruments and a few test-only ones, priced now.

Every test that uses the database starts with these instruments listed and a fresh price for each
(tests/conftest.py), through the platform's own writer (market.prices.record), so the order path values,
collars and checks staleness exactly as in production. A test that wants another market sets prices with
`price()`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from market import directory, prices
from market.models import Instrument

D = Decimal
# symbol: (asset class, currency, tick, lot, multiplier, price, extra fields)
DEMO: dict[str, tuple[str, str, str, str, str, str, dict[str, object]]] = {
    "AAPL": ("EQUITY", "USD", "0.01", "1", "1", "148.00", {}),
    "MSFT": ("EQUITY", "USD", "0.01", "1", "1", "295.00", {}),
    "GOOGL": ("EQUITY", "USD", "0.01", "1", "1", "98.00", {}),
    "AMZN": ("EQUITY", "USD", "0.01", "1", "1", "178.00", {}),
    "TSLA": ("EQUITY", "USD", "0.01", "1", "1", "196.00", {}),
    "NVDA": ("EQUITY", "USD", "0.01", "1", "1", "120.00", {}),
    "JPM": ("EQUITY", "USD", "0.01", "1", "1", "198.00", {}),
    "IBM": ("EQUITY", "USD", "0.01", "1", "1", "180.00", {}),
    "SAP": ("EQUITY", "EUR", "0.01", "1", "1", "175.00", {}),
    "ESH7": ("FUTURE", "USD", "0.25", "1", "50", "5000.00", {"expiry": dt.date(2027, 3, 19)}),
    "AAPL-20270115-C150": (
        "OPTION",
        "USD",
        "0.01",
        "1",
        "100",
        "7.50",
        {"underlying": "AAPL", "strike": D(150), "expiry": dt.date(2027, 1, 15), "option_right": "CALL"},
    ),
    "EURUSD": ("FX", "USD", "0.00001", "1000", "1", "1.08000", {}),
    "GBPUSD": ("FX", "USD", "0.00001", "1000", "1", "1.26000", {}),
    "USDJPY": ("FX", "JPY", "0.001", "1000", "1", "150.000", {}),
    "BTCUSD": ("CRYPTO", "USD", "0.01", "0.0001", "1", "60000.00", {}),
    "ETHUSD": ("CRYPTO", "USD", "0.01", "0.001", "1", "3000.00", {}),
}
# Symbols the older tests trade, with the finest tick and lot and priced at 0.01: any order at 0.01 or more is
# valued at its own price, as the seed's arithmetic in those tests expects.
TEST_ONLY = [
    *("AAA", "BBB", "CCC", "DDD", "EEE", "A", "NEW", "OLD", "MID", "NEWSYM", "LOSS", "FRSH", "CONC", "THR"),
    *(f"S{i}" for i in range(30)),
    *(f"K{i}" for i in range(4)),
]


def list_instruments() -> None:
    """List the instruments that are missing (a flushed database, a new test database) and price them all now."""
    have = set(Instrument.objects.values_list("symbol", flat=True))
    rows = []
    for symbol, (asset_class, currency, tick, lot, multiplier, price, extra) in DEMO.items():
        if symbol not in have:
            rows.append(
                Instrument(
                    symbol=symbol,
                    name=symbol,
                    asset_class=asset_class,
                    currency=currency,
                    tick_size=D(tick),
                    lot_size=D(lot),
                    multiplier=D(multiplier),
                    initial_price=D(price),
                    volatility=D("0.25"),
                    **extra,
                )
            )
    for symbol in TEST_ONLY:
        if symbol not in have:
            rows.append(
                Instrument(
                    symbol=symbol,
                    name=f"Test instrument {symbol}",
                    asset_class="EQUITY",
                    currency="USD",
                    tick_size=D("0.00000001"),
                    lot_size=D("0.00000001"),
                    initial_price=D("0.01"),
                    volatility=D("0.25"),
                    staleness_seconds=24 * 3600,  # never stale in a test (staleness is tested on AAPL)
                )
            )
    if rows:
        Instrument.objects.bulk_create(rows)
        directory.forget()
    now = timezone.now()
    prices.record(
        prices.Quote(symbol, price, now, "test")
        for symbol, price in Instrument.objects.values_list("symbol", "initial_price")
        if price is not None
    )


def list_for_drills(symbols: list[str], at: str) -> None:
    """The market of a live stack's drills (its own database): `symbols` listed with the finest tick and lot,
    each priced at `at` exactly, with no bid or ask (so both sides of the drills' orders at that price are
    marketable and fill at it), and a staleness bound longer than a test session (no feed runs there: the
    drills stop and start the stack's pieces, and their orders must not depend on a price process)."""
    for symbol in symbols:
        Instrument.objects.update_or_create(
            symbol=symbol,
            defaults={
                "name": f"Drill instrument {symbol}",
                "asset_class": "EQUITY",
                "currency": "USD",
                "tick_size": D("0.00000001"),
                "lot_size": D("0.00000001"),
                "initial_price": D(at),
                "staleness_seconds": 7 * 24 * 3600,
            },
        )
    directory.forget()
    prices.record(prices.Quote(symbol, D(at), timezone.now(), "drill") for symbol in symbols)


def price(symbol: str, last: Decimal | str | int, at: dt.datetime | None = None) -> None:
    """Set the market price of `symbol` (now, unless `at`)."""
    prices.record([prices.Quote(symbol, D(str(last)), at or timezone.now(), "test")])
