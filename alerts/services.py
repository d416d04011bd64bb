"""Alert writes: the evaluator's pass over new audit events and periodic readings, acknowledgement, config events.

One seam: every cause is an audit event (or a reading of limit usage and prices), so the evaluator reads the
trail past its cursor and nothing on the order path calls it. Alerts are written with their ALERT_RAISED event
in one transaction; once committed they are published (Redis pub/sub for the streams) and queued for e-mail and
webhooks (alerts.tasks).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import User
from alerts import rules
from alerts.models import Alert, AlertCursor, AlertRule, Kind
from audit.models import Event, EventType
from audit.services import EventSpec, event_record, events_record
from core.exceptions import Conflict, InvalidInput, NotFound

logger = logging.getLogger("itirp.alerts")

CHANNEL = "itirp:alerts"
BATCH = 5000  # events read per pass at most (a backlog after downtime is worked through in steps)


def rules_enabled() -> list[rules.Rule]:
    return [
        rules.Rule(
            id=r.pk,
            name=r.name,
            kind=r.kind,
            event_type=r.event_type,
            severity=r.severity,
            threshold=r.threshold,
            count=r.count,
            window_seconds=r.window_seconds,
        )
        for r in AlertRule.objects.filter(enabled=True)
    ]


class Evaluator:
    """Turns causes into alerts. Holds the burst windows, so one long-lived instance per evaluator process."""

    def __init__(self) -> None:
        self.windows = rules.Windows()
        self.primed = False

    def _prime(self, upto: int, active: list[rules.Rule]) -> None:
        """After a restart, refill the burst windows with the causes already read (up to the cursor) that are
        still inside their windows, raising nothing: a burst that straddles a restart still counts."""
        self.primed = True
        bursts = [r for r in active if r.count and r.window_seconds and r.event_type]
        if not bursts:
            return
        longest = max(r.window_seconds or 0 for r in bursts)
        since = timezone.now() - dt.timedelta(seconds=longest)
        silent = rules.Windows()
        for event in Event.objects.filter(
            sequence__lte=upto, timestamp__gte=since, event_type__in={r.event_type for r in bursts}
        ).order_by("sequence"):
            rules.on_event(bursts, _cause(event), silent)
        self.windows = silent

    def run_events(self) -> list[Alert]:
        """One pass over the events committed since the cursor (a first pass starts at the trail's end)."""
        with transaction.atomic():
            cursor, created = AlertCursor.objects.select_for_update().get_or_create(id=1)
            head = Event.objects.aggregate(m=Max("sequence"))["m"] or 0
            if created or cursor.last_sequence > head:  # a fresh start (or a reset trail) does not replay history
                self.primed = True
                cursor.last_sequence = head
                cursor.save(update_fields=["last_sequence"])
                return []
            if head == cursor.last_sequence:
                return []
            # PostgreSQL events become visible in sequence order (audit/migrations/0006), so every event up to
            # `head` is committed and none is skipped by moving the cursor there.
            upto = min(head, cursor.last_sequence + BATCH)
            active = rules_enabled()
            if not self.primed:
                self._prime(cursor.last_sequence, active)
            types = {r.event_type for r in active if r.event_type} | {"LOGIN_LOCKED_OUT"}
            events = Event.objects.filter(
                sequence__gt=cursor.last_sequence, sequence__lte=upto, event_type__in=types
            ).order_by("sequence")
            candidates: list[rules.Candidate] = []
            for event in events:
                candidates += rules.on_event(active, _cause(event), self.windows)
            cursor.last_sequence = upto
            cursor.save(update_fields=["last_sequence"])
            return alerts_raise(candidates)

    def run_checks(self, now: dt.datetime | None = None) -> list[Alert]:
        """The periodic readings: limit usage of every limited scope, and the age of held symbols' prices."""
        now = now or timezone.now()
        active = rules_enabled()
        found: list[rules.Candidate] = []
        if any(r.kind == Kind.LIMIT_USAGE for r in active):
            found += rules.on_usage(active, usage_readings(), now)
        if any(r.kind == Kind.STALE_MARKET_DATA for r in active):
            found += rules.on_stale(active, price_ages(now), now)
        if not found:
            return []
        with transaction.atomic():
            return alerts_raise(found)


def _cause(event: Event) -> rules.Cause:
    return rules.Cause(
        event_id=str(event.event_id),
        event_type=event.event_type,
        timestamp=event.timestamp,
        actor_username=event.actor_username,
        symbol=event.symbol,
        payload=event.payload,
    )


def usage_readings() -> list[rules.Usage]:
    from risk import selectors as risk_selectors  # the risk layer is below alerts; read only

    readings = []
    for scope in risk_selectors.limited_scopes():
        data = risk_selectors.scope_limits(scope)
        for measure, used in data["usage"].items():
            limit = data.get(measure)
            if limit is not None:
                readings.append(rules.Usage(str(scope), measure, Decimal(used), Decimal(limit)))
    return readings


def price_ages(now: dt.datetime) -> dict[str, float | None]:
    """Age in seconds of the latest price of each symbol the firm holds (None: no price at all)."""
    from market import prices
    from risk.models import Position

    held = sorted(set(Position.objects.filter(scope="firm").exclude(quantity=0).values_list("symbol", flat=True)))
    if not held:
        return {}
    quotes = prices.latest(held)
    return {s: ((now - quotes[s].timestamp).total_seconds() if s in quotes else None) for s in held}


def alerts_raise(candidates: Sequence[rules.Candidate]) -> list[Alert]:
    """Write the candidates that are not repeats of an unacknowledged alert inside its rule's dedup window,
    each with its ALERT_RAISED event; publish and deliver them once committed."""
    if not candidates:
        return []
    now = timezone.now()
    windows = dict(AlertRule.objects.filter(pk__in={c.rule_id for c in candidates}).values_list("pk", "dedup_seconds"))
    raised: list[Alert] = []
    seen: set[str] = set()
    for c in candidates:
        since = now - dt.timedelta(seconds=windows.get(c.rule_id, 0))
        repeats = Alert.objects.filter(dedup_key=c.dedup_key, timestamp__gte=since)
        if c.cause_event_id is not None:
            # A new cause (another halt) after an acknowledgement is news; a reading that stays high is not.
            repeats = repeats.filter(acknowledged_at__isnull=True)
        if c.dedup_key in seen or repeats.exists():
            continue
        seen.add(c.dedup_key)
        raised.append(
            Alert(
                rule_id=c.rule_id,
                kind=c.kind,
                severity=c.severity,
                scope=c.scope[:200],
                message=c.message[:1000],
                timestamp=now,
                cause_event_id=c.cause_event_id,
                cause_timestamp=c.cause_timestamp,
                dedup_key=c.dedup_key[:300],
            )
        )
    if not raised:
        return []
    Alert.objects.bulk_create(raised)
    events_record(
        specs=[
            EventSpec(
                EventType.ALERT_RAISED,
                {
                    "alert_id": str(a.alert_id),
                    "kind": a.kind,
                    "severity": a.severity,
                    "scope": a.scope,
                    "message": a.message,
                    "cause_event_id": a.cause_event_id and str(a.cause_event_id),
                },
            )
            for a in raised
        ]
    )
    ids = [str(a.alert_id) for a in raised]
    transaction.on_commit(lambda: alerts_deliver(ids), robust=True)
    return raised


def alert_json(alert: Alert) -> dict[str, Any]:
    """API.md's alert shape (plus the acknowledgement, the cause and the stream's id)."""
    return {
        "id": alert.id,
        "alert_id": str(alert.alert_id),
        "kind": alert.kind,
        "severity": alert.severity,
        "scope": alert.scope,
        "message": alert.message,
        "timestamp": alert.timestamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "cause_event_id": str(alert.cause_event_id) if alert.cause_event_id else None,
        "cause_timestamp": (
            alert.cause_timestamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if alert.cause_timestamp
            else None
        ),
        "acknowledged_by": alert.acknowledged_by.username if alert.acknowledged_by_id else None,  # type: ignore[union-attr]
        "acknowledged_at": (
            alert.acknowledged_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if alert.acknowledged_at
            else None
        ),
        "note": alert.note,
    }


def alerts_deliver(alert_ids: Sequence[str]) -> None:
    """After commit: to every web process's streams (Redis pub/sub), and to e-mail and webhooks (Celery)."""
    from alerts import tasks  # task <-> service, the one real cycle (STYLE.md)

    alerts_publish(Alert.objects.filter(alert_id__in=alert_ids).select_related("acknowledged_by").order_by("id"))
    for alert_id in alert_ids:
        try:
            tasks.alert_email.delay(alert_id)
            tasks.alert_webhooks.delay(alert_id)
        except Exception:  # noqa: BLE001 - the alert is a row and streamed already; a broker down loses a copy
            logger.exception("alerts: could not queue e-mail/webhook delivery of %s", alert_id)


def redis_client() -> Any:
    if not settings.REDIS_URL:
        return None
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=1)


def alerts_publish(alerts: Sequence[Alert] | Any) -> None:
    client = redis_client()
    if client is None:
        return  # no Redis (make run): streams poll the rows
    try:
        for alert in alerts:
            client.publish(CHANNEL, json.dumps(alert_json(alert)))
    except Exception:  # noqa: BLE001 - streams also catch up from the rows on reconnect
        logger.warning("alerts: Redis unavailable, streams will find the alert by polling on reconnect")


def alert_acknowledge(*, actor: User, alert_id: str, note: str) -> Alert:
    note = (note or "").strip()
    if not note:
        raise InvalidInput("A note is required to acknowledge an alert", fields={"note": "Say what was done."})
    try:
        key = uuid.UUID(str(alert_id))
    except ValueError:
        raise NotFound(f"No alert {str(alert_id)[:64]}") from None  # the route takes any 36 hex-ish characters
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(alert_id=key).first()
        if alert is None:
            raise NotFound(f"No alert {alert_id}")
        if alert.acknowledged_at is not None:
            raise Conflict(f"Alert {alert_id} was acknowledged already", code="already_acknowledged")
        alert.acknowledged_by = actor
        alert.acknowledged_at = timezone.now()
        alert.note = note[:1000]
        alert.save(update_fields=["acknowledged_by", "acknowledged_at", "note"])
        event_record(
            event_type=EventType.ALERT_ACKNOWLEDGED,
            actor=actor,
            payload={"alert_id": str(alert.alert_id), "kind": alert.kind, "scope": alert.scope, "note": alert.note},
        )
    return alert


def alert_config_record(*, actor: User, what: str, name: str, action: str, values: dict[str, Any]) -> None:
    """The event of a change to a rule or a webhook made in the admin (never the webhook's secret)."""
    event_record(
        event_type=EventType.ALERT_CONFIG_CHANGED,
        actor=actor,
        payload={"object": what, "name": name, "action": action, "values": values},
    )


RULE_FIELDS = [
    "name",
    "kind",
    "event_type",
    "threshold",
    "count",
    "window_seconds",
    "severity",
    "dedup_seconds",
    "enabled",
]
WEBHOOK_FIELDS = ["name", "url", "min_severity", "enabled"]  # never the secret


def alert_config_save(*, actor: User, row: AlertRule | Any, created: bool) -> None:
    """Save a rule or a webhook edited in the admin, with its ALERT_CONFIG_CHANGED event."""
    fields = RULE_FIELDS if isinstance(row, AlertRule) else WEBHOOK_FIELDS
    with transaction.atomic():
        row.save()
        alert_config_record(
            actor=actor,
            what=type(row).__name__,
            name=str(row),
            action="created" if created else "changed",
            values={f: str(getattr(row, f)) for f in fields},
        )


def alert_config_delete(*, actor: User, row: AlertRule | Any) -> None:
    with transaction.atomic():
        alert_config_record(actor=actor, what=type(row).__name__, name=str(row), action="deleted", values={})
        row.delete()
