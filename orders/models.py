"""Orders and fills, and the one place that defines which status may follow which."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from risk.checks import Side
from risk.models import Digits

QTY: Digits = {"max_digits": 20, "decimal_places": 8}


def _plain(value: Decimal | None) -> str:
    """A stored amount without the column's trailing zeros (10.00000000 -> 10), for the names pages show."""
    return "–" if value is None else f"{Decimal(value).normalize():f}"


class OrderStatus(models.TextChoices):
    PENDING = "PENDING"
    RISK_CHECK = "RISK_CHECK"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXECUTING = "EXECUTING"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    EXECUTED = "EXECUTED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


# The one Side is the pure checks' (risk.checks.Side); the column offers its values as choices.
SIDE_CHOICES = [(side.value, side.value.title()) for side in Side]


class OrderType(models.TextChoices):
    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(models.TextChoices):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class VenueCode(models.TextChoices):
    """Where an order is sent: the simulated external venue (the seed's flow, the default) or the internal
    order book (orders.internal)."""

    SIM = "SIM", "Simulated external venue"
    INTERNAL = "INTERNAL", "Internal order book"


# The order state machine. EXECUTING -> APPROVED is a retry after a transient venue failure, a re-queue by
# the sweeper, or an order that now rests at its venue; nothing leaves a final status. PARTIALLY_FILLED is
# an order resting at the internal venue with some of it filled: it fills further, is cancelled, expires.
# A resting order that another order trades against goes from APPROVED or PARTIALLY_FILLED to
# PARTIALLY_FILLED or EXECUTED; an IOC, FOK or market order whose rest cannot trade ends CANCELLED (with
# what it filled, if anything).
TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.RISK_CHECK}),
    OrderStatus.RISK_CHECK: frozenset({OrderStatus.APPROVED, OrderStatus.REJECTED}),
    OrderStatus.APPROVED: frozenset(
        {
            OrderStatus.EXECUTING,
            OrderStatus.CANCELLED,
            OrderStatus.FAILED,
            OrderStatus.EXPIRED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.EXECUTED,
        }
    ),
    OrderStatus.EXECUTING: frozenset(
        {
            OrderStatus.EXECUTED,
            OrderStatus.FAILED,
            OrderStatus.APPROVED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.CANCELLED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.EXECUTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
    ),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXECUTED: frozenset(),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}
OPEN_STATUSES = frozenset({OrderStatus.APPROVED, OrderStatus.EXECUTING, OrderStatus.PARTIALLY_FILLED})
# What a trader, a halt or the end of the day may cancel: not at a venue call this moment.
CANCELLABLE_STATUSES = frozenset({OrderStatus.APPROVED, OrderStatus.PARTIALLY_FILLED})
FINAL_STATUSES = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


class IllegalTransition(Exception):
    """A status change the state machine does not allow: a programming error or a lost race."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"order cannot go from {current} to {target}")
        self.current, self.target = current, target


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    correlation_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    client_order_id = models.CharField(max_length=64, null=True, blank=True)
    execution_key = models.CharField(
        max_length=64, help_text="sha256 of user, symbol, side, quantity, price, client_order_id"
    )
    # No index of its own: order_user_created_idx (user_id, created_at DESC) serves every lookup by user,
    # and one index fewer is one write fewer per submission.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders", db_index=False)
    # Named by string (orders sits above books, but the model needs no import). Index: order_book_created_idx.
    book = models.ForeignKey("books.Book", on_delete=models.PROTECT, related_name="orders", db_index=False)
    symbol = models.CharField(max_length=20)
    side = models.CharField(max_length=4, choices=SIDE_CHOICES)
    quantity = models.DecimalField(**QTY)
    price = models.DecimalField(**QTY)
    strategy = models.CharField(max_length=50, default="default")
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    venue = models.CharField(max_length=16, choices=VenueCode.choices, default=VenueCode.SIM)
    order_type = models.CharField(max_length=8, choices=OrderType.choices, default=OrderType.LIMIT)
    time_in_force = models.CharField(max_length=4, choices=TimeInForce.choices, default=TimeInForce.DAY)
    # What is still open (FIX LeavesQty): the quantity while nothing is filled, less each fill; 0 once the
    # order ends. What the order holds reserved against the limits is this much (risk.store.Reservation.of).
    leaves_quantity = models.DecimalField(**QTY, default=0)
    # A MARKET order's worst acceptable price (its reference moved by the strictest price collar of its
    # scopes): it never trades beyond it. Null for LIMIT orders (their price bounds them).
    protection_price = models.DecimalField(**QTY, null=True, blank=True)
    # Time priority in the internal venue's book while the order rests there (null otherwise).
    resting_seq = models.BigIntegerField(null=True, blank=True)
    executed_quantity = models.DecimalField(**QTY, null=True, blank=True)
    executed_price = models.DecimalField(**QTY, null=True, blank=True)
    # One unit's exposure and notional in the reporting currency as the decision valued it (the worse of the
    # order's and the market's price, times multiplier and FX; an option's exposure delta-adjusted): what the
    # order reserved, and gives back when it ends. Null for orders decided at their own price (before market
    # valuation): their price is both.
    exposure_price = models.DecimalField(**QTY, null=True, blank=True)
    notional_price = models.DecimalField(**QTY, null=True, blank=True)
    rejection_reason = models.TextField(blank=True, default="")
    retry_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="order_user_created_idx"),
            models.Index(fields=["-created_at"], name="order_created_idx"),
            models.Index(fields=["book", "-created_at"], name="order_book_created_idx"),
            models.Index(fields=["execution_key", "created_at"], name="order_key_created_idx"),
            models.Index(
                fields=["status", "updated_at"],
                name="order_open_idx",
                condition=models.Q(status__in=["APPROVED", "EXECUTING", "PARTIALLY_FILLED"]),
            ),
            # The internal venue's book of a symbol: its resting orders, rebuilt from these rows.
            models.Index(
                fields=["symbol", "resting_seq"],
                name="order_internal_book_idx",
                condition=models.Q(resting_seq__isnull=False),
            ),
            models.Index(
                fields=["user", "client_order_id"],
                name="order_user_client_id_idx",
                condition=models.Q(client_order_id__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["execution_key"],
                condition=models.Q(client_order_id__isnull=False),
                name="order_execution_key_unique",
            ),
            # A MARKET order's price is the reference it was checked at; one refused for want of a reference
            # has none (0).
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0) & (models.Q(price__gt=0) | models.Q(order_type="MARKET")),
                name="order_positive",
            ),
        ]
        permissions = [
            ("submit_order", "Can submit orders"),
            ("view_all_orders", "Can view every user's orders"),
            ("cancel_any_order", "Can cancel any user's order"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {_plain(self.quantity)} {self.symbol} @ {_plain(self.price)} [{self.status}]"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def transition(self, target: str) -> None:
        """Move to `target` or raise IllegalTransition; the caller saves."""
        if target not in TRANSITIONS[self.status]:
            raise IllegalTransition(self.status, target)
        self.status = target
        self.updated_at = timezone.now()


class Fill(models.Model):
    """One execution report from a venue: an order fills in one or more parts, each unique by the venue's
    trade id (a repeated report is ignored and recorded, FILL_DUPLICATE_IGNORED)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    venue = models.CharField(max_length=40)
    venue_execution_id = models.CharField(max_length=64, unique=True)
    quantity = models.DecimalField(**QTY)
    price = models.DecimalField(**QTY)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0) & models.Q(price__gt=0), name="fill_positive"),
        ]

    def __str__(self) -> str:
        return f"fill {_plain(self.quantity)} @ {_plain(self.price)} ({self.venue})"


class InternalTrade(models.Model):
    """A trade of the internal venue: an incoming order (the aggressor) against a resting one, at the resting
    order's price. Its id is the venue trade id of both orders' fills (INT-<id>-B and INT-<id>-S)."""

    symbol = models.CharField(max_length=20)
    price = models.DecimalField(**QTY)
    quantity = models.DecimalField(**QTY)
    aggressor = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="+")
    resting = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="+")
    aggressor_side = models.CharField(max_length=4, choices=SIDE_CHOICES)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["symbol", "-id"], name="internal_trade_symbol_idx")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.quantity} @ {self.price}"


class InternalBook(models.Model):
    """One symbol's book at the internal venue: its sequence of time priority. The book itself is the
    resting orders' rows (Order.resting_seq); it is changed only under the risk lock (orders.internal)."""

    symbol = models.CharField(max_length=20, unique=True)
    next_seq = models.BigIntegerField(default=1)

    def __str__(self) -> str:
        return f"INTERNAL {self.symbol}"
