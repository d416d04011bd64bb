"""The audit endpoints: event pages with filters, trails by correlation and by order, roles and 404s."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import Event

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/audit/events"
EVENT_FIELDS = {"event_id", "event_type", "correlation_id", "order_id", "timestamp", "payload", "user_id"}


def order(client: Any, **changes: Any) -> dict[str, Any]:
    data = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "price": 10, **changes}
    response = client.post("/api/v1/orders", data, format="json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def auditor(compliance, client_for) -> Any:
    return client_for(compliance)


@pytest.mark.parametrize("role", ["COMPLIANCE", "ADMIN"])
def test_audit_when_compliance_or_admin_then_200(make_user, client_for, role) -> None:
    client = client_for(make_user("u", role))
    assert client.get(EVENTS).status_code == 200


@pytest.mark.parametrize("role", ["TRADER", "RISK_MANAGER"])
@pytest.mark.parametrize(
    "path", [EVENTS, f"/api/v1/audit/correlation/{uuid.uuid4()}", f"/api/v1/audit/order/{uuid.uuid4()}/trail"]
)
def test_audit_when_trader_or_risk_manager_then_403(make_user, client_for, role, path) -> None:
    assert client_for(make_user("u", role)).get(path).status_code == 403


@pytest.mark.parametrize(
    "path", [EVENTS, f"/api/v1/audit/correlation/{uuid.uuid4()}", f"/api/v1/audit/order/{uuid.uuid4()}/trail"]
)
def test_audit_when_no_token_then_401(api, path) -> None:
    assert api.get(path).status_code == 401


def test_events_when_listed_then_newest_last_with_limit_and_total(trader, client_for, auditor) -> None:
    trading = client_for(trader)
    for i in range(3):
        order(trading, client_order_id=str(i))
    total = Event.objects.count()
    data = auditor.get(EVENTS, {"limit": 4}).json()
    assert data["total"] == total
    assert len(data["events"]) == 4
    sequences = [e["sequence"] for e in data["events"]]
    assert sequences == sorted(sequences) and sequences[-1] == Event.objects.order_by("sequence").last().sequence
    assert EVENT_FIELDS <= set(data["events"][0])
    assert [e["event_type"] for e in data["events"]][-3:] == [
        "ORDER_CREATED",
        "RISK_CHECK_STARTED",
        "RISK_CHECK_PASSED",
    ]


def test_events_when_filtered_by_type_user_and_order_then_only_matches(trader, trader2, client_for, auditor) -> None:
    mine = order(client_for(trader))
    order(client_for(trader2))
    by_type = auditor.get(EVENTS, {"event_type": "ORDER_CREATED"}).json()
    assert by_type["total"] == 2 and {e["event_type"] for e in by_type["events"]} == {"ORDER_CREATED"}
    by_user = auditor.get(EVENTS, {"user": "trader1", "event_type": "RISK_CHECK_PASSED"}).json()
    assert by_user["total"] == 1 and by_user["events"][0]["user_id"] == "trader1"
    assert auditor.get(EVENTS, {"user_id": "trader2", "event_type": "ORDER_CREATED"}).json()["total"] == 1
    by_order = auditor.get(EVENTS, {"order_id": mine["order_id"]}).json()
    assert by_order["total"] == 3 and {e["order_id"] for e in by_order["events"]} == {mine["order_id"]}


def test_events_when_filtered_by_time_range_then_only_inside(trader, client_for, auditor) -> None:
    trading = client_for(trader)
    order(trading, client_order_id="1")
    middle = timezone.now()
    order(trading, client_order_id="2")
    after = auditor.get(EVENTS, {"since": middle.isoformat(), "event_type": "ORDER_CREATED"}).json()
    before = auditor.get(EVENTS, {"until": middle.isoformat(), "event_type": "ORDER_CREATED"}).json()
    assert after["total"] == 1 and before["total"] == 1
    assert after["events"][0]["payload"]["client_order_id"] == "2"
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert auditor.get(EVENTS, {"start_time": future}).json() == {"events": [], "total": 0}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "many"},
        {"event_type": "ORDER_EATEN"},
        {"order_id": "not-a-uuid"},
        {"since": "yesterday"},
    ],
)
def test_events_when_query_is_invalid_then_400(auditor, params) -> None:
    response = auditor.get(EVENTS, params)
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["detail"]} == set(params)


def test_correlation_trail_when_known_then_every_event_of_the_request_in_order(trader, client_for, auditor) -> None:
    submitted = order(client_for(trader))
    response = auditor.get(f"/api/v1/audit/correlation/{submitted['correlation_id']}")
    assert response.status_code == 200
    data = response.json()
    assert data["correlation_id"] == submitted["correlation_id"] and data["total_events"] == 3
    assert [e["event_type"] for e in data["events"]] == ["ORDER_CREATED", "RISK_CHECK_STARTED", "RISK_CHECK_PASSED"]


@pytest.mark.parametrize("raw", [str(uuid.uuid4()), "nope"])
def test_correlation_trail_when_unknown_then_404(auditor, raw) -> None:
    response = auditor.get(f"/api/v1/audit/correlation/{raw}")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("No events for correlation id")


def test_order_trail_when_cancelled_then_its_whole_life_in_order(trader, client_for, auditor) -> None:
    client = client_for(trader)
    submitted = order(client)
    client.post(f"/api/v1/orders/{submitted['order_id']}/cancel")
    response = auditor.get(f"/api/v1/audit/order/{submitted['order_id']}/trail")
    assert response.status_code == 200
    data = response.json()
    assert data["order_id"] == submitted["order_id"] and data["total_events"] == 4
    assert [e["event_type"] for e in data["events"]] == [
        "ORDER_CREATED",
        "RISK_CHECK_STARTED",
        "RISK_CHECK_PASSED",
        "ORDER_CANCELLED",
    ]


@pytest.mark.parametrize("raw", [str(uuid.uuid4()), "12345"])
def test_order_trail_when_no_events_then_404(auditor, raw) -> None:
    response = auditor.get(f"/api/v1/audit/order/{raw}/trail")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_limit_change_event_when_listed_then_order_id_is_null_and_actor_named(
    risk_manager, client_for, auditor
) -> None:
    client_for(risk_manager).patch("/api/v1/risk/limits", {"max_position_size": 5}, format="json")
    event = auditor.get(EVENTS, {"event_type": "LIMITS_CHANGED"}).json()["events"][0]
    assert event["order_id"] is None and event["user_id"] == "risk1"
    assert event["payload"]["changed"]["max_position_size"] == {"old": "1000000.00", "new": "5.00"}


def _login_failures(n: int, username: str = "someone") -> None:
    from django.db import transaction

    from audit.models import EventType
    from audit.services import event_record

    for i in range(n):
        with transaction.atomic():
            event_record(event_type=EventType.LOGIN_FAILED, payload={"username": username, "i": i})


@pytest.mark.postgres
def test_events_total_when_within_the_exact_limit_then_counted_exactly(auditor, settings) -> None:
    settings.AUDIT_EVENTS_EXACT_COUNT_LIMIT = 50
    _login_failures(4)
    response = auditor.get(EVENTS, {"event_type": "LOGIN_FAILED"})
    assert response.json()["total"] == 4
    assert response["X-Total-Exact"] == "true"


@pytest.mark.postgres
def test_events_total_when_past_the_limit_then_the_planners_estimate_never_a_full_count(auditor, settings) -> None:
    """Past the limit no COUNT(*) over the selection runs: the planner's estimate answers (v1 shape kept)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.AUDIT_EVENTS_EXACT_COUNT_LIMIT = 5
    _login_failures(12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_event")
    with CaptureQueriesContext(connection) as queries:
        filtered = auditor.get(EVENTS, {"event_type": "LOGIN_FAILED", "limit": 3})
        everything = auditor.get(EVENTS, {"limit": 3})
    for response in (filtered, everything):
        body = response.json()
        assert set(body) == {"events", "total"} and len(body["events"]) == 3
        assert body["total"] >= 6 and response["X-Total-Exact"] == "false"
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 6" in sql for sql in counts), counts  # only the bounded count
    assert any(q["sql"].startswith("EXPLAIN") for q in queries.captured_queries)
