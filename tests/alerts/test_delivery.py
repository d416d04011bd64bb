"""Delivery: e-mail through Django's mail backend, and webhooks signed with HMAC-SHA256, retried on a 500
(a real HTTP server on 127.0.0.1: the boundary the receiver is), each attempt recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.db import transaction

from alerts import rules, services, tasks
from alerts.models import AlertRule, AlertWebhook, WebhookDelivery

pytestmark = pytest.mark.django_db


def raise_one(severity: str = "CRITICAL") -> Any:
    rule = AlertRule.objects.get(kind="CIRCUIT_BREAKER")
    with transaction.atomic():
        (alert,) = services.alerts_raise(
            [rules.Candidate(rule.pk, "CIRCUIT_BREAKER", severity, "venue:SIM", "opened", f"k{severity}")]
        )
    return alert


@pytest.fixture
def eager() -> Iterator[None]:
    from itirp.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_email_to_the_risk_managers_when_raised(
    risk_manager, settings, eager, django_capture_on_commit_callbacks
) -> None:
    risk_manager.email = "risk1@example.com"
    risk_manager.save(update_fields=["email"])
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_one()
    (message,) = mail.outbox
    assert message.to == ["risk1@example.com"]
    assert "CIRCUIT_BREAKER" in message.subject and str(alert.alert_id) in message.body


def test_email_recipients_from_settings_and_min_severity(settings) -> None:
    settings.ALERTS_EMAIL_TO = ["desk@example.com"]
    settings.ALERTS_EMAIL_MIN_SEVERITY = "HIGH"
    assert tasks.alert_email(str(raise_one("WARNING").alert_id)) == 0
    assert tasks.alert_email(str(raise_one("HIGH").alert_id)) == 1
    assert mail.outbox[0].to == ["desk@example.com"]


class Receiver:
    """A webhook receiver on 127.0.0.1: answers the scripted statuses in turn, keeps what it received."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([500, 500])
    yield r
    r.close()


def test_webhook_signed_verifiable_with_the_secret_and_retried_on_500(receiver: Receiver, eager) -> None:
    hook = AlertWebhook.objects.create(name="pager", url=receiver.url, secret="s3cret")
    alert = raise_one()
    tasks.alert_webhooks.apply(args=[str(alert.alert_id)])
    assert len(receiver.received) == 3  # 500, 500, then 200
    headers, body = receiver.received[-1]
    stamp, signature = headers["X-ITIRP-Timestamp"], headers["X-ITIRP-Signature"]
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert json.loads(body)["alert"]["alert_id"] == str(alert.alert_id)
    wrong = hmac.new(b"other", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert signature != f"sha256={wrong}"
    attempts = list(
        WebhookDelivery.objects.filter(webhook=hook).order_by("attempt").values_list("attempt", "status_code", "ok")
    )
    assert attempts == [(1, 500, False), (2, 500, False), (3, 200, True)]


def test_webhook_below_its_min_severity_not_sent(receiver: Receiver, eager) -> None:
    AlertWebhook.objects.create(name="pager", url=receiver.url, secret="s", min_severity="CRITICAL")
    assert tasks.alert_webhooks.apply(args=[str(raise_one("HIGH").alert_id)]).get() == 0
    assert receiver.received == []
