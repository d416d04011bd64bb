"""Orders and fills, and the one place that defines which status may follow which."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from risk.checks import Side
from risk.models import Digits

QTY: Digits = {"max_digits": 20, "decimal_places": 8}


class OrderStatus(models.TextChoices):
    PENDING = "PENDING"
    RISK_CHECK = "RISK_CHECK"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXECUTING = "EXECUTING"
    EXECUTED = "EXECUTED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


# The one Side is the pure checks' (risk.checks.Side); the column offers its values as choices.
SIDE_CHOICES = [(side.value, side.value.title()) for side in Side]


# The order state machine. EXECUTING -> APPROVED is a retry after a transient venue failure or a
# re-queue by the sweeper; nothing leaves a final status.
TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.RISK_CHECK}),
    OrderStatus.RISK_CHECK: frozenset({OrderStatus.APPROVED, OrderStatus.REJECTED}),
    OrderStatus.APPROVED: frozenset(
        {OrderStatus.EXECUTING, OrderStatus.CANCELLED, OrderStatus.FAILED, OrderStatus.EXPIRED}
    ),
    OrderStatus.EXECUTING: frozenset({OrderStatus.EXECUTED, OrderStatus.FAILED, OrderStatus.APPROVED}),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXECUTED: frozenset(),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}
OPEN_STATUSES = frozenset({OrderStatus.APPROVED, OrderStatus.EXECUTING})
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
    status = models.CharField(max_length=12, choices=OrderStatus.choices, default=OrderStatus.PENDING)
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
                condition=models.Q(status__in=["APPROVED", "EXECUTING"]),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["execution_key"],
                condition=models.Q(client_order_id__isnull=False),
                name="order_execution_key_unique",
            ),
            models.CheckConstraint(condition=models.Q(quantity__gt=0) & models.Q(price__gt=0), name="order_positive"),
        ]
        permissions = [
            ("submit_order", "Can submit orders"),
            ("view_all_orders", "Can view every user's orders"),
            ("cancel_any_order", "Can cancel any user's order"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol} @ {self.price} [{self.status}]"

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
    """One execution report from a venue. An order is filled at most once (unique venue execution id)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    venue = models.CharField(max_length=40)
    venue_execution_id = models.CharField(max_length=64, unique=True)
    quantity = models.DecimalField(**QTY)
    price = models.DecimalField(**QTY)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # Orders fill whole (no partial fills yet): a second fill of one order is refused by the database.
            models.UniqueConstraint(fields=["order"], name="fill_one_per_order"),
        ]

    def __str__(self) -> str:
        return f"fill {self.quantity} @ {self.price} ({self.venue})"
