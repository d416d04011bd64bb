"""Celery tasks of the alerts app: e-mail to the risk managers, and signed webhooks retried with backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import requests
from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail

from alerts.models import SEVERITY_RANK, Alert, AlertWebhook, Severity, WebhookDelivery


class WebhookFailed(Exception):
    """A receiver answered other than 2xx: retried with backoff."""


def email_recipients() -> list[str]:
    if settings.ALERTS_EMAIL_TO:
        return list(settings.ALERTS_EMAIL_TO)
    from accounts.models import User

    return sorted(
        e for e in User.objects.filter(role="RISK_MANAGER", is_active=True).values_list("email", flat=True) if e
    )


@shared_task(name="alerts.email", acks_late=True, ignore_result=True)
def alert_email(alert_id: str) -> int:
    alert = Alert.objects.filter(alert_id=alert_id).first()
    if (
        alert is None
        or SEVERITY_RANK[Severity(alert.severity)] < SEVERITY_RANK[Severity(settings.ALERTS_EMAIL_MIN_SEVERITY)]
    ):
        return 0
    to = email_recipients()
    if not to:
        return 0
    subject = f"[ITIRP {alert.severity}] {alert.kind} on {alert.scope}"
    body = (
        f"{alert.message}\n\nRaised {alert.timestamp:%Y-%m-%d %H:%M:%S} UTC, alert {alert.alert_id}.\n"
        "Acknowledge it in the back office (the banner) or POST /api/v1/alerts/<id>/ack with a note.\n"
    )
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)


@shared_task(name="alerts.webhooks", acks_late=True, ignore_result=True)
def alert_webhooks(alert_id: str) -> int:
    """Fan out: one delivery task per enabled webhook, so one slow receiver's retries do not delay another."""
    alert = Alert.objects.filter(alert_id=alert_id).first()
    if alert is None:
        return 0
    rank = SEVERITY_RANK[Severity(alert.severity)]
    hooks = [h.pk for h in AlertWebhook.objects.filter(enabled=True) if SEVERITY_RANK[Severity(h.min_severity)] <= rank]
    for pk in hooks:
        webhook_deliver.delay(pk, alert_id)
    return len(hooks)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """sha256=HMAC-SHA256(secret, "<timestamp>.<body>") in hex: the receiver recomputes it and compares."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@shared_task(
    bind=True,
    name="alerts.webhook_deliver",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(WebhookFailed, requests.RequestException),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=settings.ALERTS_WEBHOOK_MAX_RETRIES,
)
def webhook_deliver(self: Any, webhook_pk: int, alert_id: str) -> bool:
    from alerts.services import alert_json  # task <-> service (STYLE.md)

    hook = AlertWebhook.objects.filter(pk=webhook_pk, enabled=True).first()
    alert = Alert.objects.filter(alert_id=alert_id).first()
    if hook is None or alert is None:
        return False
    body = json.dumps({"alert": alert_json(alert)}, separators=(",", ":")).encode()
    stamp = str(int(time.time()))
    attempt = self.request.retries + 1
    started = time.monotonic()
    status, error = None, ""
    try:
        response = requests.post(
            hook.url,
            data=body,
            timeout=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS,
            headers={
                "Content-Type": "application/json",
                "X-ITIRP-Timestamp": stamp,
                "X-ITIRP-Signature": signature(hook.secret, stamp, body),
                "X-ITIRP-Alert-Id": alert_id,
            },
        )
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
        raise
    finally:
        WebhookDelivery.objects.create(
            webhook=hook,
            alert=alert,
            attempt=attempt,
            status_code=status,
            ok=not error,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
    if error:
        raise WebhookFailed(error)
    return True
