"""GET /alerts, POST /alerts/{id}/ack and GET /alerts/stream through HTTP: shapes, roles, the note, the stream."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
from django.test import override_settings

from alerts import services
from alerts.models import Alert
from audit.models import Event, EventType

pytestmark = pytest.mark.django_db


def an_alert(scope: str = "firm") -> Alert:
    from django.db import transaction

    from alerts import rules
    from alerts.models import AlertRule

    rule = AlertRule.objects.get(kind="TRADING_STATE")
    with transaction.atomic():
        (alert,) = services.alerts_raise(
            [
                rules.Candidate(
                    rule.pk, "TRADING_STATE", "CRITICAL", scope, f"{scope} halted", f"TRADING_STATE|{scope}|x"
                )
            ]
        )
    return alert


def test_list_when_risk_manager_then_api_md_shape(risk_manager, client_for) -> None:
    alert = an_alert()
    data = client_for(risk_manager).get("/api/v1/alerts").json()
    (row,) = data["alerts"]
    assert {"alert_id", "kind", "severity", "scope", "message", "timestamp", "acknowledged_by"} <= set(row)
    assert (row["alert_id"], row["kind"], row["acknowledged_by"]) == (str(alert.alert_id), "TRADING_STATE", None)
    assert row["timestamp"].endswith("Z")
    assert data["last_id"] == alert.id


def test_list_since_filters(risk_manager, client_for) -> None:
    alert = an_alert()
    since = alert.timestamp.isoformat()
    assert client_for(risk_manager).get("/api/v1/alerts", {"since": since}).json()["alerts"] == []
    assert client_for(risk_manager).get("/api/v1/alerts", {"since": "nonsense"}).status_code == 400


@pytest.mark.parametrize("method", ["list", "ack", "stream"])
def test_trader_gets_403(trader, client_for, method: str) -> None:
    alert = an_alert()
    client = client_for(trader)
    response = {
        "list": lambda: client.get("/api/v1/alerts"),
        "ack": lambda: client.post(f"/api/v1/alerts/{alert.alert_id}/ack", {"note": "x"}, format="json"),
        "stream": lambda: client.get("/api/v1/alerts/stream", HTTP_ACCEPT="text/event-stream"),
    }[method]()
    assert response.status_code == 403
    assert Alert.objects.get().acknowledged_at is None


def test_ack_with_note_then_recorded_with_its_event(risk_manager, client_for) -> None:
    alert = an_alert()
    response = client_for(risk_manager).post(
        f"/api/v1/alerts/{alert.alert_id}/ack", {"note": "called desk"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["acknowledged_by"], response.json()["note"]) == (risk_manager.username, "called desk")
    event = Event.objects.get(event_type=EventType.ALERT_ACKNOWLEDGED)
    assert (event.actor_username, event.payload["note"]) == (risk_manager.username, "called desk")
    again = client_for(risk_manager).post(f"/api/v1/alerts/{alert.alert_id}/ack", {"note": "again"}, format="json")
    assert again.status_code == 409


@pytest.mark.parametrize("body", [{}, {"note": ""}, {"note": "   "}])
def test_ack_without_note_then_400_and_nothing_written(risk_manager, client_for, body) -> None:
    alert = an_alert()
    client = client_for(risk_manager)
    events = Event.objects.count()
    response = client.post(f"/api/v1/alerts/{alert.alert_id}/ack", body, format="json")
    assert response.status_code == 400
    assert Alert.objects.get().acknowledged_at is None and Event.objects.count() == events


def test_ack_unknown_alert_then_404(risk_manager, client_for) -> None:
    assert (
        client_for(risk_manager).post(f"/api/v1/alerts/{uuid.uuid4()}/ack", {"note": "x"}, format="json").status_code
        == 404
    )


def _frames(chunks: list[str]) -> list[dict]:
    text = "".join(chunks)
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_stream_yields_an_alert_raised_after_the_connection_via_redis(risk_manager, client_for) -> None:
    if services.redis_client() is None:
        assert os.environ.get("REQUIRE_SERVICES") != "1", "Redis is required in CI"
        pytest.skip("REDIS_URL not set")
    response = client_for(risk_manager).get("/api/v1/alerts/stream?lifetime=3", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
    stream = iter(response.streaming_content)
    first = next(stream).decode()
    assert first.startswith("retry: ")  # connected: the browser's reconnect delay
    alert = an_alert("desk:EQ")
    services.alerts_publish([alert])  # what the commit does (the test's transaction never commits)
    chunks = [c.decode() for c in stream]
    assert [f["alert_id"] for f in _frames(chunks)] == [str(alert.alert_id)]
    assert f"id: {alert.id}" in "".join(chunks)


@override_settings(REDIS_URL="")
def test_stream_without_redis_polls_the_rows_and_resumes_after_last_event_id(risk_manager, client_for) -> None:
    old = an_alert("book:A")
    response = client_for(risk_manager).get(
        "/api/v1/alerts/stream?lifetime=2", HTTP_ACCEPT="text/event-stream", HTTP_LAST_EVENT_ID=str(old.id)
    )
    stream = iter(response.streaming_content)
    next(stream)
    new = an_alert("book:B")
    chunks = [c.decode() for c in stream]
    assert [f["scope"] for f in _frames(chunks)] == ["book:B"]
    assert new.id > old.id


def test_ack_of_a_malformed_alert_id_is_404_not_500(risk_manager: Any, client_for: Any) -> None:
    # found by schemathesis: the route admits 36 characters of hex digits and dashes that are no UUID
    response = client_for(risk_manager).post(
        "/api/v1/alerts/0Ec0f3Dc097f1EaA1edFf002B99ee959b79B/ack", {"note": "x"}, format="json"
    )
    assert response.status_code == 404
