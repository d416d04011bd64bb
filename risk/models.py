"""Risk data: the scoped limits, the locked risk-state row, and positions with their open-order reservations."""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict

from django.conf import settings
from django.db import models


class Digits(TypedDict):
    """A decimal column's precision, typed so that `DecimalField(**MONEY)` is checked field by field."""

    max_digits: int
    decimal_places: int


MONEY: Digits = {"max_digits": 38, "decimal_places": 8}
FIRM_STATE_ID = 1
FIRM_SCOPE = "firm"
# The seed's firm-wide limits, the firm row's values on a new database.
FIRM_DEFAULTS = {
    "max_position_size": Decimal("1000000"),
    "max_daily_volume": Decimal("10000000"),
    "max_net_exposure": Decimal("5000000"),
    "max_gross_exposure": Decimal("15000000"),
}


class LimitScope(models.TextChoices):
    FIRM = "FIRM", "Firm-wide"
    DESK = "DESK", "Desk"
    BOOK = "BOOK", "Book"
    TRADER = "TRADER", "Trader"
    SYMBOL = "SYMBOL", "Symbol"


class RiskLimits(models.Model):
    """Limits for one scope (risk.scopes): the firm row (scope FIRM, key "") is the seed's and sets every limit
    it had; any other scope sets only what it sets. A null inherits: an order passes only if it passes the
    limits of every scope it falls under."""

    scope = models.CharField(max_length=10, choices=LimitScope.choices, default=LimitScope.FIRM)
    scope_key = models.CharField(max_length=64, blank=True, default="")
    max_position_size = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    max_daily_volume = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    max_net_exposure = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    max_gross_exposure = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    # Fat-finger limits of one order (RTS 6 Art. 15), the day's loss (checked once positions have marks,
    # the instruments issue) and the price collar (percent of the reference price, same issue).
    max_order_quantity = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    max_order_value = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    max_daily_loss = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    price_collar_pct = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    # Value at Risk (reporting currency): not a pre-trade check; the scheduled run (analytics) moves a scope over it
    # to REDUCING.
    max_var = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = "risk limits"
        verbose_name_plural = "risk limits"
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_key"], name="risk_limits_scope_unique"),
            models.CheckConstraint(
                condition=(models.Q(max_position_size__isnull=True) | models.Q(max_position_size__gt=0))
                & (models.Q(max_daily_volume__isnull=True) | models.Q(max_daily_volume__gt=0))
                & (models.Q(max_net_exposure__isnull=True) | models.Q(max_net_exposure__gt=0))
                & (models.Q(max_gross_exposure__isnull=True) | models.Q(max_gross_exposure__gt=0))
                & (models.Q(max_order_quantity__isnull=True) | models.Q(max_order_quantity__gt=0))
                & (models.Q(max_order_value__isnull=True) | models.Q(max_order_value__gt=0))
                & (models.Q(max_daily_loss__isnull=True) | models.Q(max_daily_loss__gt=0))
                & (models.Q(price_collar_pct__isnull=True) | models.Q(price_collar_pct__gt=0))
                & (models.Q(max_var__isnull=True) | models.Q(max_var__gt=0)),
                name="risk_limits_positive",
            ),
            models.CheckConstraint(
                condition=~models.Q(scope="FIRM")
                | (
                    models.Q(max_position_size__isnull=False)
                    & models.Q(max_daily_volume__isnull=False)
                    & models.Q(max_net_exposure__isnull=False)
                    & models.Q(max_gross_exposure__isnull=False)
                ),
                name="risk_limits_firm_complete",
            ),
        ]
        permissions = [
            ("view_risk_metrics", "Can view risk metrics and positions"),
            ("manage_limits", "Can read and change risk limits"),
            ("toggle_kill_switch", "Can turn the kill switch on and off"),
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} limits" + (f" ({self.scope_key})" if self.scope_key else "")


class TradingState(models.TextChoices):
    """A scope's trading state, most restrictive last: the strictest among an order's scopes applies."""

    ACTIVE = "ACTIVE", "Active"
    REDUCING = "REDUCING", "Reducing only"
    HALTED = "HALTED", "Halted"


class RiskState(models.Model):
    """The row every risk decision locks (SELECT ... FOR UPDATE): kill switch, daily volume, open volume.

    Lock order everywhere: RiskState, then Order rows by primary key, then Position rows.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=FIRM_STATE_ID)
    # The firm scope's trading state; the seed's kill switch is HALTED (kill_switch_enabled kept equal to it).
    trading_state = models.CharField(max_length=8, choices=TradingState.choices, default=TradingState.ACTIVE)
    kill_switch_enabled = models.BooleanField(default=False)
    kill_switch_reason = models.TextField(blank=True, default="")
    kill_switch_changed_at = models.DateTimeField(null=True, blank=True)
    kill_switch_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trading_day = models.DateField(null=True, blank=True, help_text="UTC day that executed_volume belongs to")
    executed_volume = models.DecimalField(**MONEY, default=Decimal(0))
    open_volume = models.DecimalField(**MONEY, default=Decimal(0), help_text="notional reserved by open orders")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "risk state"
        verbose_name_plural = "risk state"

    def __str__(self) -> str:
        return "firm risk state"


class ScopeState(models.Model):
    """A scope's trading state and its day's volumes, for every scope but the firm (RiskState is the firm's).

    Written only by holders of the risk lock, like positions."""

    scope = models.CharField(max_length=80, primary_key=True, help_text="desk:EQ, book:MAIN, trader:alice, symbol:AAPL")
    trading_state = models.CharField(max_length=8, choices=TradingState.choices, default=TradingState.ACTIVE)
    reason = models.TextField(blank=True, default="")
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trading_day = models.DateField(null=True, blank=True, help_text="UTC day that executed_volume belongs to")
    executed_volume = models.DecimalField(**MONEY, default=Decimal(0))
    open_volume = models.DecimalField(**MONEY, default=Decimal(0), help_text="notional reserved by open orders")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope"]

    def __str__(self) -> str:
        return f"{self.scope} {self.trading_state}"


class Position(models.Model):
    """A scope's position in a symbol, its P&L, and the quantities and notional reserved by its open orders.

    Kept for the firm (scope "firm": the seed's positions), each desk, book and trader: the book rows are the
    positions proper; the others are running sums of them, updated with them under the risk lock, so a
    decision reads the scopes it needs and never adds books up."""

    scope = models.CharField(max_length=80, default=FIRM_SCOPE)
    symbol = models.CharField(max_length=20)
    quantity = models.DecimalField(**MONEY, default=Decimal(0))
    average_price = models.DecimalField(**MONEY, default=Decimal(0))
    realized_pnl = models.DecimalField(**MONEY, default=Decimal(0))
    mark_price = models.DecimalField(**MONEY, null=True, blank=True, help_text="last fill price")
    open_buy_quantity = models.DecimalField(**MONEY, default=Decimal(0))
    open_buy_notional = models.DecimalField(**MONEY, default=Decimal(0))
    open_sell_quantity = models.DecimalField(**MONEY, default=Decimal(0))
    open_sell_notional = models.DecimalField(**MONEY, default=Decimal(0))
    # The UTC day's P&L (risk.store.fill_book rolls these at a row's first fill of a day): realised P&L of the
    # day, and the quantity and average price held when the day began, so that daily P&L = realised today +
    # unrealised now - unrealised at the day's start (valued at the day before's close).
    pnl_day = models.DateField(null=True, blank=True)
    day_realized_pnl = models.DecimalField(**MONEY, default=Decimal(0), db_default=Decimal(0))
    sod_quantity = models.DecimalField(**MONEY, default=Decimal(0), db_default=Decimal(0))
    sod_average_price = models.DecimalField(**MONEY, default=Decimal(0), db_default=Decimal(0))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "symbol"]
        constraints = [models.UniqueConstraint(fields=["scope", "symbol"], name="position_scope_symbol_unique")]

    def __str__(self) -> str:
        return f"{self.scope} {self.symbol} {self.quantity}"

    @property
    def market_value(self) -> Decimal:
        return self.quantity * (self.mark_price if self.mark_price is not None else self.average_price)

    @property
    def unrealized_pnl(self) -> Decimal:
        if self.mark_price is None:
            return Decimal(0)
        return (self.mark_price - self.average_price) * self.quantity


class ExposureSnapshot(models.Model):
    """Firm exposure measured at one moment (a beat task every minute): the dashboard's chart of the day."""

    taken_at = models.DateTimeField(db_index=True)
    net_exposure = models.DecimalField(**MONEY)
    gross_exposure = models.DecimalField(**MONEY)
    daily_volume = models.DecimalField(**MONEY)
    open_volume = models.DecimalField(**MONEY)
    largest_position = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["taken_at"]
        get_latest_by = "taken_at"

    def __str__(self) -> str:
        return f"exposure at {self.taken_at:%Y-%m-%d %H:%M:%S}"
