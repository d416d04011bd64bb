"""Refused attempts are in the trail (issue 18.3): a duplicate and a reused client order id (409), a throttled
submission (429) and an order in a book not granted (403) each write one ORDER_REFUSED with the reason and the
request's client_order_id, and nothing else; GET /audit/events?client_order_id= finds them beside the order's
own events."""

from __future__ import annotations

from typing import Any

import pytest
from guardian.shortcuts import remove_perm

from audit.models import Event, EventType
from books.models import Book
from orders import apis as order_apis
from tests.orders.conftest import body, written, written_but_refusal

pytestmark = pytest.mark.django_db


def post(client: Any, **changes: Any) -> Any:
    return client.post("/api/v1/orders", body(**changes), format="json")


def test_duplicate_when_resent_then_409_and_one_refusal_with_reason_and_client_order_id(trader, client_for) -> None:
    client = client_for(trader)
    first = post(client, client_order_id="wb-dup").json()
    before = written()
    assert post(client, client_order_id="wb-dup").status_code == 409
    written_but_refusal(before, "duplicate_order", "wb-dup")
    refusal = Event.objects.get(event_type=EventType.ORDER_REFUSED)
    assert refusal.actor_username == "trader1" and refusal.payload["existing_order_id"] == first["order_id"]
    assert refusal.payload["symbol"] == "AAPL" and refusal.symbol == "AAPL"


def test_client_order_id_reused_when_other_order_then_409_and_its_refusal(trader, client_for) -> None:
    client = client_for(trader)
    post(client, client_order_id="wb-reuse")
    before = written()
    response = post(client, client_order_id="wb-reuse", quantity=7)
    assert response.status_code == 409 and response.json()["code"] == "client_order_id_reused"
    written_but_refusal(before, "client_order_id_reused", "wb-reuse")


@pytest.mark.redis
def test_throttled_when_over_the_rate_then_429_and_one_refusal_per_refused_request(
    trader, client_for, monkeypatch
) -> None:
    client = client_for(trader)
    monkeypatch.setattr(order_apis.OrderSubmitThrottle, "THROTTLE_RATES", {"orders": "1/min"})
    assert post(client, client_order_id="wb-t1").status_code == 200
    before = written()
    for n in (2, 3):
        assert post(client, client_order_id=f"wb-t{n}").status_code == 429
    after = written()
    assert {**after, "events": after["events"] - 2} == before
    refusals = list(Event.objects.filter(event_type=EventType.ORDER_REFUSED).order_by("sequence"))
    assert [(e.payload["reason"], e.payload["client_order_id"]) for e in refusals] == [
        ("throttled", "wb-t2"),
        ("throttled", "wb-t3"),
    ]
    assert all(e.actor_username == "trader1" and e.actor_id == trader.pk for e in refusals)
    assert refusals[0].payload["retry_after_seconds"] is not None


@pytest.mark.redis
def test_throttled_when_the_body_is_not_json_then_still_one_refusal(trader, client_for, monkeypatch) -> None:
    client = client_for(trader)
    monkeypatch.setattr(order_apis.OrderSubmitThrottle, "THROTTLE_RATES", {"orders": "1/min"})
    post(client)
    response = client.post("/api/v1/orders", data=b"{not json", content_type="application/json")
    assert response.status_code == 429
    refusal = Event.objects.get(event_type=EventType.ORDER_REFUSED)
    assert refusal.payload["reason"] == "throttled" and refusal.payload["client_order_id"] is None


def test_book_not_granted_when_submitted_then_403_and_one_refusal(trader, client_for) -> None:
    client = client_for(trader)
    main = Book.objects.get(code="MAIN")
    for group in trader.groups.all():
        remove_perm("books.trade_book", group, main)
    remove_perm("books.trade_book", trader, main)
    before = written()
    response = post(client, client_order_id="wb-book", book="MAIN")
    assert response.status_code == 403, response.content
    written_but_refusal(before, "book_not_tradable", "wb-book")


def test_events_api_when_client_order_id_then_the_order_and_its_refused_attempts(
    trader, trader2, compliance, client_for
) -> None:
    client = client_for(trader)
    order_id = post(client, client_order_id="wb-find").json()["order_id"]
    post(client, client_order_id="wb-find")  # 409
    post(client_for(trader2), client_order_id="other")
    found = client_for(compliance).get("/api/v1/audit/events", {"client_order_id": "wb-find"}).json()
    kinds = [(e["event_type"], e["order_id"]) for e in found["events"]]
    assert kinds == [
        ("ORDER_CREATED", order_id),
        ("RISK_CHECK_STARTED", order_id),
        ("RISK_CHECK_PASSED", order_id),
        ("ORDER_REFUSED", None),
    ]
    assert found["total"] == 4
    narrowed = client_for(compliance).get(
        "/api/v1/audit/events", {"client_order_id": "wb-find", "event_type": "ORDER_REFUSED"}
    )
    assert [e["payload"]["reason"] for e in narrowed.json()["events"]] == ["duplicate_order"]


def test_events_api_when_since_until_then_half_open_range_and_bad_value_400(trader, compliance, client_for) -> None:
    client = client_for(trader)
    post(client, client_order_id="wb-range")
    created = Event.objects.get(event_type=EventType.ORDER_CREATED)
    auditor = client_for(compliance)
    at = created.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    inside = auditor.get("/api/v1/audit/events", {"since": at, "event_type": "ORDER_CREATED"}).json()
    assert inside["total"] == 1
    outside = auditor.get("/api/v1/audit/events", {"until": at, "event_type": "ORDER_CREATED"}).json()
    assert outside["total"] == 0
    assert auditor.get("/api/v1/audit/events", {"since": "yesterday"}).status_code == 400
