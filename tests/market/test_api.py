"""GET /instruments and /instruments/{symbol} (API.md "Instruments and market data"): any signed-in role reads
them, filtered by asset class and searched by symbol or name, with the latest price of each from its Mark."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.market.conftest import mark

pytestmark = pytest.mark.django_db

FIELDS = {
    "symbol",
    "name",
    "asset_class",
    "currency",
    "tick_size",
    "lot_size",
    "multiplier",
    "status",
    "reference_price",
    "reference_time",
    "expiry",
    "underlying",
    "strike",
    "option_right",
}


@pytest.mark.parametrize("role", ["TRADER", "RISK_MANAGER", "COMPLIANCE", "ADMIN"])
def test_list_when_any_role_then_every_instrument_by_symbol(
    demo: Any, make_user: Any, client_for: Any, role: str
) -> None:
    response = client_for(make_user(f"u-{role.lower()}", role)).get("/api/v1/instruments")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["total"] == 16 == len(body["instruments"])
    symbols = [i["symbol"] for i in body["instruments"]]
    assert symbols == sorted(symbols)
    assert all(set(i) == FIELDS for i in body["instruments"])


def test_list_when_no_price_yet_then_reference_price_null_and_numbers_are_numbers(
    demo: Any, trader: Any, client_for: Any
) -> None:
    eurusd = client_for(trader).get("/api/v1/instruments?search=EURUSD").json()["instruments"][0]
    assert eurusd == {
        "symbol": "EURUSD",
        "name": "Euro / US dollar",
        "asset_class": "FX",
        "currency": "USD",
        "tick_size": 0.00001,
        "lot_size": 1000,
        "multiplier": 1,
        "status": "ACTIVE",
        "reference_price": None,
        "reference_time": None,
        "expiry": None,
        "underlying": None,
        "strike": None,
        "option_right": None,
    }


def test_list_when_marks_exist_then_reference_price_and_time_in_one_query(
    demo: Any, trader: Any, client_for: Any
) -> None:
    when = dt.datetime(2026, 11, 27, 14, 30, 0, tzinfo=dt.UTC)
    mark("AAPL", "151.25", when)
    mark("ESH7", "5012.50", when)
    client = client_for(trader)

    with CaptureQueriesContext(connection) as queries:
        body = client.get("/api/v1/instruments").json()

    by_symbol = {i["symbol"]: i for i in body["instruments"]}
    assert by_symbol["AAPL"]["reference_price"] == 151.25
    assert by_symbol["AAPL"]["reference_time"] == "2026-11-27T14:30:00.000000Z"
    assert by_symbol["ESH7"]["reference_price"] == 5012.5
    assert by_symbol["MSFT"]["reference_price"] is None
    instrument_queries = [q["sql"] for q in queries.captured_queries if "market_instrument" in q["sql"]]
    assert len(instrument_queries) == 1, instrument_queries


@pytest.mark.parametrize(
    ("query", "symbols"),
    [
        ("asset_class=FX", ["EURUSD", "GBPUSD", "USDJPY"]),
        ("asset_class=crypto", ["BTCUSD", "ETHUSD"]),
        ("asset_class=OPTION", ["AAPL-20270115-C150"]),
        ("search=aapl", ["AAPL", "AAPL-20270115-C150"]),
        ("search=dollar", ["BTCUSD", "ETHUSD", "EURUSD", "GBPUSD", "USDJPY"]),
        ("search=corp", ["MSFT", "NVDA"]),
        ("asset_class=EQUITY&search=inc", ["AAPL", "AMZN", "GOOGL", "TSLA"]),
        ("search=nothing-like-it", []),
    ],
)
def test_list_when_filtered_then_only_matching(
    demo: Any, trader: Any, client_for: Any, query: str, symbols: list[str]
) -> None:
    body = client_for(trader).get(f"/api/v1/instruments?{query}").json()
    assert [i["symbol"] for i in body["instruments"]] == symbols
    assert body["total"] == len(symbols)


def test_list_when_asset_class_unknown_then_400(demo: Any, trader: Any, client_for: Any) -> None:
    response = client_for(trader).get("/api/v1/instruments?asset_class=BOND")
    assert response.status_code == 400
    assert "asset_class" in str(response.json()["detail"])


def test_detail_when_known_then_the_instrument_with_its_terms(demo: Any, trader: Any, client_for: Any) -> None:
    mark("AAPL-20270115-C150", "7.55", dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC))
    client = client_for(trader)

    response = client.get("/api/v1/instruments/aapl-20270115-c150/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["symbol"] == "AAPL-20270115-C150" and body["asset_class"] == "OPTION"
    assert (body["underlying"], body["strike"], body["option_right"], body["expiry"]) == (
        "AAPL",
        150,
        "CALL",
        "2027-01-15",
    )
    assert body["multiplier"] == 100 and body["reference_price"] == 7.55
    assert client.get("/api/v1/instruments/ESH7").json()["expiry"] == "2027-03-19"


def test_detail_when_unknown_then_404(demo: Any, trader: Any, client_for: Any) -> None:
    response = client_for(trader).get("/api/v1/instruments/NOPE")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/v1/instruments", "/api/v1/instruments/AAPL"])
def test_instruments_when_no_token_then_401(demo: Any, path: str) -> None:
    assert APIClient().get(path).status_code == 401


def test_schema_documents_the_instrument_operations(api: APIClient) -> None:
    paths = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    listing = next(v for p, v in paths.items() if p.rstrip("/") == "/api/v1/instruments")
    detail = next(v for p, v in paths.items() if p.rstrip("/") == "/api/v1/instruments/{symbol}")
    assert {"200", "400", "401"} <= set(listing["get"]["responses"])
    assert {"200", "401", "404"} <= set(detail["get"]["responses"])
