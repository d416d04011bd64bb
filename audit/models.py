"""The append-only event store: every state change of the platform is one Event row."""

from __future__ import annotations

import uuid

import pgtrigger
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.fields.json import KeyTransform
from django.utils import timezone


class EventType(models.TextChoices):
    """Every kind of event, named in the past tense. One enum for the whole platform."""

    ORDER_CREATED = "ORDER_CREATED"
    RISK_CHECK_STARTED = "RISK_CHECK_STARTED"
    RISK_CHECK_PASSED = "RISK_CHECK_PASSED"
    RISK_CHECK_FAILED = "RISK_CHECK_FAILED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    EXECUTION_STARTED = "EXECUTION_STARTED"
    EXECUTION_ATTEMPT_FAILED = "EXECUTION_ATTEMPT_FAILED"
    EXECUTION_COMPLETED = "EXECUTION_COMPLETED"
    EXECUTION_FAILED = "EXECUTION_FAILED"
    ORDER_REQUEUED = "ORDER_REQUEUED"
    CIRCUIT_BREAKER_OPENED = "CIRCUIT_BREAKER_OPENED"
    CIRCUIT_BREAKER_HALF_OPENED = "CIRCUIT_BREAKER_HALF_OPENED"
    CIRCUIT_BREAKER_CLOSED = "CIRCUIT_BREAKER_CLOSED"
    LIMITS_CHANGED = "LIMITS_CHANGED"
    KILL_SWITCH_ACTIVATED = "KILL_SWITCH_ACTIVATED"
    KILL_SWITCH_DEACTIVATED = "KILL_SWITCH_DEACTIVATED"
    DAILY_VOLUME_RESET = "DAILY_VOLUME_RESET"
    LOGIN_SUCCEEDED = "LOGIN_SUCCEEDED"
    LOGIN_FAILED = "LOGIN_FAILED"
    LOGIN_LOCKED_OUT = "LOGIN_LOCKED_OUT"
    LOGGED_OUT = "LOGGED_OUT"
    TOKEN_REFRESHED = "TOKEN_REFRESHED"
    TOKEN_REFUSED = "TOKEN_REFUSED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    USER_CREATED = "USER_CREATED"
    ROLE_CHANGED = "ROLE_CHANGED"
    USER_DEACTIVATED = "USER_DEACTIVATED"
    USER_REACTIVATED = "USER_REACTIVATED"
    PASSWORD_CHANGED = "PASSWORD_CHANGED"
    GROUP_PERMISSIONS_CHANGED = "GROUP_PERMISSIONS_CHANGED"
    AUDIT_EXPORTED = "AUDIT_EXPORTED"
    AUDIT_VERIFIED = "AUDIT_VERIFIED"
    AUDIT_SEALING_STOPPED = "AUDIT_SEALING_STOPPED"
    TRADING_STATE_CHANGED = "TRADING_STATE_CHANGED"
    ORDER_REFUSED = "ORDER_REFUSED"
    DESK_CREATED = "DESK_CREATED"
    BOOK_CREATED = "BOOK_CREATED"
    GRANT_ADDED = "GRANT_ADDED"
    GRANT_REVOKED = "GRANT_REVOKED"
    INSTRUMENT_LISTED = "INSTRUMENT_LISTED"
    INSTRUMENT_CHANGED = "INSTRUMENT_CHANGED"
    MARKET_HISTORY_LOADED = "MARKET_HISTORY_LOADED"
    ORDER_EXPIRED = "ORDER_EXPIRED"
    ORDER_RESTING = "ORDER_RESTING"
    ORDER_PARTIALLY_FILLED = "ORDER_PARTIALLY_FILLED"
    FILL_DUPLICATE_IGNORED = "FILL_DUPLICATE_IGNORED"
    ORDER_AMEND_REQUESTED = "ORDER_AMEND_REQUESTED"
    ORDER_AMENDED = "ORDER_AMENDED"
    ORDER_AMEND_REJECTED = "ORDER_AMEND_REJECTED"
    CHANGE_REQUESTED = "CHANGE_REQUESTED"
    CHANGE_APPROVED = "CHANGE_APPROVED"
    CHANGE_REJECTED = "CHANGE_REJECTED"
    CHANGE_EXPIRED = "CHANGE_EXPIRED"
    USER_DETAILS_CHANGED = "USER_DETAILS_CHANGED"
    AUDIT_SCHEDULE_CHANGED = "AUDIT_SCHEDULE_CHANGED"
    ALERT_RAISED = "ALERT_RAISED"
    ALERT_ACKNOWLEDGED = "ALERT_ACKNOWLEDGED"
    ALERT_CONFIG_CHANGED = "ALERT_CONFIG_CHANGED"
    VAR_LIMIT_BREACHED = "VAR_LIMIT_BREACHED"


class Event(models.Model):
    """One immutable fact. Rows are inserted by audit.services only and never updated or deleted."""

    sequence = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    correlation_id = models.UUIDField()
    causation_id = models.UUIDField(null=True, blank=True, help_text="event_id of the event that caused this one")
    order_id = models.UUIDField(null=True, blank=True)
    symbol = models.CharField(max_length=20, blank=True, default="")
    # The actor: who did it. Kept by id and by name at the time (names can change, the record must not).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    actor_username = models.CharField(max_length=150, blank=True, default="")
    address = models.GenericIPAddressField(null=True, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["sequence"]
        indexes = [
            models.Index(fields=["timestamp"], name="event_ts_idx"),
            models.Index(fields=["event_type", "timestamp"], name="event_type_ts_idx"),
            models.Index(fields=["actor_username", "timestamp"], name="event_actor_ts_idx"),
            models.Index(fields=["symbol", "timestamp"], name="event_symbol_ts_idx"),
            models.Index(fields=["order_id", "sequence"], name="event_order_seq_idx"),
            models.Index(fields=["correlation_id", "sequence"], name="event_corr_seq_idx"),
            # payload -> 'client_order_id': the compliance search finds an order, or a refused attempt, by it.
            # Partial: only the events that carry the key (ORDER_CREATED, ORDER_REFUSED), one index write
            # per order instead of three; queries repeat the condition (selectors.client_order_id_q).
            models.Index(
                KeyTransform("client_order_id", "payload"),
                name="event_client_order_idx",
                condition=models.Q(payload__has_key="client_order_id"),
            ),
        ]
        permissions = [
            ("view_audit_trail", "Can read the audit trail through the API"),
            ("export_audit", "Can export the audit trail"),
        ]
        triggers = [
            pgtrigger.Protect(name="event_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.event_type}"


class EventHash(models.Model):
    """The hash of one event as it was when sealed, and the running chain up to it (written by the sealer).

    content_hash = sha256 of the event's canonical content (audit.integrity.canonical_content);
    chain_hash = sha256(previous chain_hash || content_hash), starting from the previous seal's hash.
    """

    sequence = models.BigIntegerField(primary_key=True)
    event_id = models.UUIDField()
    content_hash = models.CharField(max_length=64)
    chain_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["sequence"]
        triggers = [
            pgtrigger.Protect(name="eventhash_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.content_hash[:12]}"


class Seal(models.Model):
    """One sealed batch of events: a contiguous sequence range, its known permanent gaps, the chain over
    its events' content hashes, and the hash of the seal before it. Seals are chained and signed."""

    number = models.PositiveBigIntegerField(primary_key=True)
    first_sequence = models.BigIntegerField()
    last_sequence = models.BigIntegerField(unique=True)
    event_count = models.PositiveIntegerField()
    gaps = models.JSONField(default=list, help_text="[[from, to], ...] sequences that were never committed")
    batch_hash = models.CharField(max_length=64, help_text="chain_hash of the last event of the batch")
    previous_hash = models.CharField(max_length=64, help_text="seal_hash of the previous seal (zeros for the first)")
    seal_hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=16, help_text="which seal key signed it")
    signature = models.CharField(max_length=64, help_text="HMAC-SHA256 of seal_hash with the seal key")
    sealed_at = models.DateTimeField()

    class Meta:
        ordering = ["number"]
        triggers = [
            pgtrigger.Protect(name="seal_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"seal {self.number}: #{self.first_sequence}-#{self.last_sequence}"


class Trail(models.Model):
    """This database's audit trail identity: one row, made when the database is first migrated.

    Every witness entry names it, and each trail has a witness of its own (audit.integrity.witness)."""

    # Always 1: a second identity cannot be inserted beside the first.
    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    trail_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        triggers = [
            pgtrigger.Protect(name="trail_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"trail {self.trail_id}"
