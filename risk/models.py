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


class LimitScope(models.TextChoices):
    FIRM = "FIRM", "Firm-wide"
    BOOK = "BOOK", "Book"
    TRADER = "TRADER", "Trader"
    SYMBOL = "SYMBOL", "Symbol"


class RiskLimits(models.Model):
    """Limits for one scope. The firm-wide row (scope FIRM, key "") is the seed's; others are reserved for later."""

    scope = models.CharField(max_length=10, choices=LimitScope.choices, default=LimitScope.FIRM)
    scope_key = models.CharField(max_length=64, blank=True, default="")
    max_position_size = models.DecimalField(max_digits=24, decimal_places=2, default=Decimal("1000000"))
    max_daily_volume = models.DecimalField(max_digits=24, decimal_places=2, default=Decimal("10000000"))
    max_net_exposure = models.DecimalField(max_digits=24, decimal_places=2, default=Decimal("5000000"))
    max_gross_exposure = models.DecimalField(max_digits=24, decimal_places=2, default=Decimal("15000000"))
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
                condition=models.Q(max_position_size__gt=0)
                & models.Q(max_daily_volume__gt=0)
                & models.Q(max_net_exposure__gt=0)
                & models.Q(max_gross_exposure__gt=0),
                name="risk_limits_positive",
            ),
        ]
        permissions = [
            ("view_risk_metrics", "Can view risk metrics and positions"),
            ("manage_limits", "Can read and change risk limits"),
            ("toggle_kill_switch", "Can turn the kill switch on and off"),
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} limits" + (f" ({self.scope_key})" if self.scope_key else "")


class RiskState(models.Model):
    """The row every risk decision locks (SELECT ... FOR UPDATE): kill switch, daily volume, open volume.

    Lock order everywhere: RiskState, then Order rows by primary key, then Position rows.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=FIRM_STATE_ID)
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


class Position(models.Model):
    """A symbol's position, its P&L, and the quantities and notional reserved by its open orders."""

    symbol = models.CharField(max_length=20, unique=True)
    quantity = models.DecimalField(**MONEY, default=Decimal(0))
    average_price = models.DecimalField(**MONEY, default=Decimal(0))
    realized_pnl = models.DecimalField(**MONEY, default=Decimal(0))
    mark_price = models.DecimalField(**MONEY, null=True, blank=True, help_text="last fill price")
    open_buy_quantity = models.DecimalField(**MONEY, default=Decimal(0))
    open_buy_notional = models.DecimalField(**MONEY, default=Decimal(0))
    open_sell_quantity = models.DecimalField(**MONEY, default=Decimal(0))
    open_sell_notional = models.DecimalField(**MONEY, default=Decimal(0))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.quantity}"

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
