"""Alert rules (data, edited in the admin), the alerts they raise, the evaluator's cursor, and webhooks."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    LIMIT_USAGE = "LIMIT_USAGE", "Limit usage"
    REJECTION_BURST = "REJECTION_BURST", "Burst of rejections"
    TRADING_STATE = "TRADING_STATE", "Trading state changed"
    CIRCUIT_BREAKER = "CIRCUIT_BREAKER", "Circuit breaker opened"
    STALE_MARKET_DATA = "STALE_MARKET_DATA", "Stale market data"
    VAR_BREACH = "VAR_BREACH", "VaR breach"
    AUDIT_VERIFICATION = "AUDIT_VERIFICATION", "Audit verification failed"
    LOGIN_FAILURE_BURST = "LOGIN_FAILURE_BURST", "Burst of failed logins"


class Severity(models.TextChoices):
    INFO = "INFO"
    WARNING = "WARNING"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class AlertRule(models.Model):
    """One rule: what kind of cause it watches and its thresholds. Several rows of one kind are levels
    (limit usage at 80, 90 and 100 %)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    event_type = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text="The audit event type this rule reads (by name, so a type added later works once it exists).",
    )
    threshold = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Limit usage: percent of the limit. Stale market data: age in seconds.",
    )
    count = models.PositiveIntegerField(null=True, blank=True, help_text="Bursts: this many causes ...")
    window_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="... within this many seconds.")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    dedup_seconds = models.PositiveIntegerField(
        default=600, help_text="The same alert for the same scope is not raised again while unacknowledged this long."
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "threshold", "name"]

    def __str__(self) -> str:
        return self.name


class Alert(models.Model):
    """One raised alert. Written by the evaluator; only the acknowledgement fields change later."""

    id = models.BigAutoField(primary_key=True)  # the stream's event id (ordered); alert_id is the public key
    alert_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rule = models.ForeignKey(AlertRule, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    scope = models.CharField(max_length=200)
    message = models.CharField(max_length=1000)
    timestamp = models.DateTimeField(default=timezone.now)
    cause_event_id = models.UUIDField(null=True, blank=True)
    cause_timestamp = models.DateTimeField(null=True, blank=True)
    dedup_key = models.CharField(max_length=300)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["dedup_key", "timestamp"], name="alert_dedup_idx"),
            models.Index(fields=["timestamp"], name="alert_ts_idx"),
        ]
        permissions = [("receive_alerts", "Receives and acknowledges alerts (GET /alerts, the stream, the banner)")]

    def __str__(self) -> str:
        return f"{self.severity} {self.kind} {self.scope}"


class AlertCursor(models.Model):
    """The evaluator's place in the audit trail: one row; locked by the one evaluator pass running."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    last_sequence = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"alerts evaluated up to #{self.last_sequence}"


class AlertWebhook(models.Model):
    """A receiver of every alert: POSTed JSON signed with its secret (HMAC-SHA256)."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=200, help_text="Shared with the receiver; signs each delivery.")
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One delivery attempt of one alert to one webhook."""

    webhook = models.ForeignKey(AlertWebhook, on_delete=models.CASCADE, related_name="deliveries")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField()
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.webhook_id} attempt {self.attempt}: {'ok' if self.ok else self.error}"
