"""The order lifecycle over HTTP (API.md, "Order lifecycle" and "Internal venue"): the new order fields, bad
input refused with nothing written, PATCH /orders/{id}, client order ids unique per user, and the venues'
endpoints."""

from __future__ import annotations

from decimal import Decimal as D  # noqa: N817
from typing import Any

import pytest
from guardian.shortcuts import assign_perm

from audit.models import Event, EventType
from books.models import Book, Desk
from orders import execution, venue
from orders.models import Order
from tests.support.market import price

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sync_execution(settings, tmp_path, monkeypatch):
    settings.REDIS_URL, settings.VAR_DIR = "", str(tmp_path)
    settings.VENUE_LATENCY_MS, settings.VENUE_MAX_SLIPPAGE, settings.VENUE_SCRIPT = 0, "0", ""
    settings.VENUE_SUCCESS_PROBABILITY = 1.0
    venue.venue.cache_clear()
    # The test's transaction never commits: what waits for the commit (the execution's message, the market data of
    # a trade) runs at once, and the message is the execution itself.
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: func())
    monkeypatch.setattr(
        "orders.submission.enqueue", lambda order_id, *a, **k: execution.order_execute(order_id=order_id)
    )
    monkeypatch.setattr(execution, "enqueue", lambda *a, **k: True)
    price("AAPL", "100")
    yield
    venue.venue.cache_clear()


@pytest.fixture
def seller(trader2, client_for) -> Any:
    desk = Desk.objects.get(code="EQ")
    book = Book.objects.create(code="OTHER", name="Other", desk=desk, currency="USD")
    assign_perm("books.trade_book", trader2, book)
    return client_for(trader2)


def post(client: Any, **body: Any) -> Any:
    return client.post("/api/v1/orders", {"symbol": "AAPL", "side": "BUY", "quantity": "10", **body}, format="json")


def written() -> tuple[int, int]:
    return Order.objects.count(), Event.objects.count()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"price": "100", "venue": "NYSE"}, "venue"),
        ({"price": "100", "order_type": "STOP"}, "order_type"),
        ({"price": "100", "time_in_force": "GTD"}, "time_in_force"),
        ({"order_type": "MARKET", "price": "100"}, "price"),  # refused, not ignored
        ({"order_type": "LIMIT"}, "price"),
        ({}, "price"),
    ],
)
def test_bad_lifecycle_input_is_400_naming_the_field_and_writes_nothing(trader, client_for, body, field) -> None:
    client = client_for(trader)
    before = written()
    response = post(client, **body)
    assert response.status_code == 400, response.content
    assert field in str(response.json())
    assert written() == before


def test_an_order_answers_its_lifecycle_fields_and_fills(trader, client_for) -> None:
    client = client_for(trader)
    answer = post(client, price="100", client_order_id="c-1").json()
    assert answer["status"] == "APPROVED"
    order = client.get(f"/api/v1/orders/{answer['order_id']}").json()
    assert (order["status"], order["venue"], order["order_type"], order["time_in_force"]) == (
        "EXECUTED",
        "SIM",
        "LIMIT",
        "DAY",
    )
    assert order["leaves_quantity"] == D(0) and len(order["fills"]) == 1
    assert set(order["fills"][0]) == {"fill_id", "quantity", "price", "venue", "timestamp"}


def test_a_client_order_id_reused_for_another_order_is_409_the_identical_request_stays_409(trader, client_for) -> None:
    client = client_for(trader)
    first = post(client, price="100", client_order_id="c-1").json()
    again = post(client, price="100", client_order_id="c-1")
    assert again.status_code == 409 and again.json()["code"] == "duplicate_order"
    other = post(client, price="99", client_order_id="c-1")
    assert other.status_code == 409 and other.json()["code"] == "client_order_id_reused"
    assert first["order_id"] in other.json()["detail"]
    found = client.get("/api/v1/orders?client_order_id=c-1").json()
    assert [o["order_id"] for o in found["orders"]] == [first["order_id"]]


def test_internal_venue_book_trades_and_venues_over_http(trader, client_for, seller) -> None:
    buyer = client_for(trader)
    for n, px in enumerate(("99", "98", "98")):
        answer = post(buyer, price=px, venue="INTERNAL", time_in_force="GTC", client_order_id=f"b-{n}")
        assert answer.status_code == 200 and answer.json()["status"] == "APPROVED"
    book = buyer.get("/api/v1/venues/INTERNAL/book/AAPL?depth=5").json()
    assert [(level["price"], level["quantity"], level["orders"]) for level in book["bids"]] == [
        (D(99), D(10), 1),
        (D(98), D(20), 2),
    ]
    assert book["asks"] == []
    sell = seller.post(
        "/api/v1/orders",
        {"symbol": "AAPL", "side": "SELL", "quantity": "15", "price": "98", "venue": "INTERNAL", "book": "OTHER"},
        format="json",
    ).json()
    assert sell["status"] == "APPROVED"
    trades = buyer.get("/api/v1/venues/INTERNAL/trades/AAPL").json()["trades"]
    assert [(t["price"], t["quantity"]) for t in trades] == [(D(98), D(5)), (D(99), D(10))]  # newest first
    book = buyer.get("/api/v1/venues/INTERNAL/book/AAPL").json()
    assert [(level["price"], level["quantity"]) for level in book["bids"]] == [(D(98), D(15))]
    venues = buyer.get("/api/v1/venues").json()["venues"]
    assert [(v["code"], v["kind"]) for v in venues] == [("SIM", "EXTERNAL"), ("INTERNAL", "INTERNAL")]
    assert buyer.get("/api/v1/venues/INTERNAL/book/NOPE").status_code == 404
    assert buyer.get("/api/v1/venues/INTERNAL/book/AAPL?depth=0").status_code == 400


def test_patch_amends_and_a_refused_amend_answers_rejected_with_the_order_unchanged(trader, client_for) -> None:
    client = client_for(trader)
    order_id = post(client, price="90", venue="INTERNAL", time_in_force="GTC").json()["order_id"]
    amended = client.patch(f"/api/v1/orders/{order_id}", {"quantity": "12", "price": "91"}, format="json")
    assert amended.status_code == 200, amended.content
    body = amended.json()
    assert (body["amend_status"], body["quantity"], body["price"], body["leaves_quantity"]) == (
        "AMENDED",
        D(12),
        D(91),
        D(12),
    )
    refused = client.patch(f"/api/v1/orders/{order_id}", {"price": "91.005"}, format="json").json()
    assert refused["amend_status"] == "REJECTED" and refused["violations"][0]["code"] == "TICK_SIZE"
    assert refused["price"] == D(91)
    assert client.patch(f"/api/v1/orders/{order_id}", {}, format="json").status_code == 400
    assert client.patch(f"/api/v1/orders/{order_id}", {"quantity": "0"}, format="json").status_code == 400
    client.post(f"/api/v1/orders/{order_id}/cancel", {}, format="json")
    too_late = client.patch(f"/api/v1/orders/{order_id}", {"price": "92"}, format="json")
    assert too_late.status_code == 409 and too_late.json()["code"] == "too_late_to_amend"
    kinds = list(Event.objects.filter(order_id=order_id).values_list("event_type", flat=True).order_by("sequence"))
    assert kinds.count(EventType.ORDER_AMENDED) == 1 and kinds.count(EventType.ORDER_AMEND_REJECTED) == 1


def test_another_traders_order_cannot_be_amended(trader, trader2, client_for) -> None:
    order_id = post(client_for(trader), price="90", venue="INTERNAL").json()["order_id"]
    assert client_for(trader2).patch(f"/api/v1/orders/{order_id}", {"price": "91"}, format="json").status_code == 404


def test_internal_trades_feed_the_instruments_market_data(trader, client_for, seller) -> None:
    post(client_for(trader), price="100.5", venue="INTERNAL", time_in_force="GTC")
    seller.post(
        "/api/v1/orders",
        {"symbol": "AAPL", "side": "SELL", "quantity": "10", "price": "100.5", "venue": "INTERNAL", "book": "OTHER"},
        format="json",
    )
    quote = seller.get("/api/v1/market-data/AAPL").json()
    assert (quote["last"], quote["source"]) == (D("100.5"), "INTERNAL")
