"""Instruments (reference data), the latest price per instrument, and price bars.

An instrument's symbol, asset class, currency, multiplier and underlying are fixed for life (positions and
reservations were valued with them); its status, tick and lot sizes, staleness bound and volatility are
edited by the back office and take effect at the next decision (read under the risk lock).

`Mark` is the latest price of each instrument as PostgreSQL keeps it (Redis keeps the same for readers that
want no database; market.prices writes both): with it, the value of one unit in the reporting currency
(`unit_value`: price x multiplier x FX rate, options delta-adjusted on their underlying) and the factor that
turns a price into money (`factor`: multiplier x FX rate), so the risk path values a whole book in SQL.
"""

from __future__ import annotations

from typing import TypedDict

from django.core.validators import RegexValidator
from django.db import models

SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9._/-]{0,19}$"
symbol_validator = RegexValidator(SYMBOL_PATTERN, "Symbols are 1-20 characters: capitals, digits, '.', '_', '/', '-'.")


class Digits(TypedDict):
    max_digits: int
    decimal_places: int


PRICE: Digits = {"max_digits": 30, "decimal_places": 10}
VALUE: Digits = {"max_digits": 38, "decimal_places": 10}


class AssetClass(models.TextChoices):
    EQUITY = "EQUITY", "Equity"
    FUTURE = "FUTURE", "Future"
    OPTION = "OPTION", "Option"
    FX = "FX", "FX"
    CRYPTO = "CRYPTO", "Crypto"


class InstrumentStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    HALTED = "HALTED", "Halted"
    RESTRICTED = "RESTRICTED", "Restricted"


class OptionRight(models.TextChoices):
    CALL = "CALL", "Call"
    PUT = "PUT", "Put"


class Instrument(models.Model):
    symbol = models.CharField(max_length=20, unique=True, validators=[symbol_validator])
    name = models.CharField(max_length=120)
    asset_class = models.CharField(max_length=8, choices=AssetClass.choices)
    currency = models.CharField(max_length=3, help_text="ISO 4217 code the instrument is priced in")
    tick_size = models.DecimalField(**PRICE, help_text="prices must be a whole number of ticks")
    lot_size = models.DecimalField(max_digits=30, decimal_places=10, help_text="quantities must be whole lots")
    multiplier = models.DecimalField(max_digits=30, decimal_places=10, default=1)
    status = models.CharField(max_length=10, choices=InstrumentStatus.choices, default=InstrumentStatus.ACTIVE)
    staleness_seconds = models.PositiveIntegerField(
        default=60, help_text="a price older than this makes new orders STALE_MARKET_DATA"
    )
    volatility = models.DecimalField(
        max_digits=12, decimal_places=6, default=0, help_text="annualised, as a fraction (0.25 = 25 %)"
    )
    initial_price = models.DecimalField(
        **PRICE, null=True, blank=True, help_text="the simulated feed's anchor and the demo history's last close"
    )
    expiry = models.DateField(null=True, blank=True)
    underlying = models.CharField(max_length=20, blank=True, default="")
    strike = models.DecimalField(**PRICE, null=True, blank=True)
    option_right = models.CharField(max_length=4, choices=OptionRight.choices, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tick_size__gt=0) & models.Q(lot_size__gt=0) & models.Q(multiplier__gt=0),
                name="instrument_sizes_positive",
            ),
            models.CheckConstraint(
                condition=~models.Q(asset_class="OPTION")
                | (
                    models.Q(strike__gt=0)
                    & models.Q(expiry__isnull=False)
                    & ~models.Q(underlying="")
                    & models.Q(option_right__in=["CALL", "PUT"])
                ),
                name="instrument_option_terms",
            ),
            models.CheckConstraint(
                condition=~models.Q(asset_class="FUTURE") | models.Q(expiry__isnull=False),
                name="instrument_future_expiry",
            ),
        ]

    def __str__(self) -> str:
        return self.symbol


class Mark(models.Model):
    """The latest price of an instrument (one row each), and what one unit is worth in the reporting currency."""

    symbol = models.CharField(max_length=20, primary_key=True)
    last = models.DecimalField(**PRICE)
    bid = models.DecimalField(**PRICE, null=True, blank=True)
    ask = models.DecimalField(**PRICE, null=True, blank=True)
    timestamp = models.DateTimeField()
    source = models.CharField(max_length=32)
    factor = models.DecimalField(**VALUE, help_text="multiplier x FX rate: money per unit of price")
    unit_value = models.DecimalField(**VALUE, help_text="one unit's value in the reporting currency")
    day = models.DateField(help_text="the UTC day of `last`")
    prev_close = models.DecimalField(**PRICE, null=True, blank=True, help_text="the last price of the day before")

    class Meta:
        # POST /market-data: the MARKET_DATA role (an external feed's account) and admins.
        permissions = [("push_market_data", "Can push market prices (POST /market-data)")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.last}"


class BarInterval(models.TextChoices):
    MINUTE = "1m", "1 minute"
    DAY = "1d", "1 day"


class Bar(models.Model):
    """Open, high, low and close of an instrument over one interval (1-minute bars from the feed and pushed
    prices; daily bars from history files and the demo's generated history)."""

    id = models.BigAutoField(primary_key=True)
    symbol = models.CharField(max_length=20)
    interval = models.CharField(max_length=2, choices=BarInterval.choices)
    start = models.DateTimeField()
    open = models.DecimalField(**PRICE)
    high = models.DecimalField(**PRICE)
    low = models.DecimalField(**PRICE)
    close = models.DecimalField(**PRICE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["symbol", "interval", "start"], name="bar_unique")]
        indexes = [models.Index(fields=["symbol", "interval", "-start"], name="bar_recent_idx")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.interval} {self.start:%Y-%m-%d %H:%M}"
