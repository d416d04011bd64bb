"""POST /market-data, GET /market-data/{symbol} and its history, through the endpoints."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from market import prices
from market.models import Bar, Mark
from market.prices import Quote

URL = "/api/v1/market-data"


@pytest.fixture
def feeder(make_user: Callable[..., Any]) -> Any:
    return make_user("vendor1", "MARKET_DATA")


def _push(client: Any, body: Any) -> Any:
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def test_push_when_market_data_role_then_prices_stored(
    instruments: Any, feeder: Any, client_for: Callable[[Any], Any]
) -> None:
    ts = (timezone.now() - dt.timedelta(seconds=2)).isoformat()
    body = {
        "prices": [
            {"symbol": "AAPL", "last": 150.25, "bid": 150.24, "ask": 150.26, "timestamp": ts},
            {"symbol": "msft", "last": "301.5"},
            {"symbol": "NOPE", "last": 1},
        ]
    }
    response = _push(client_for(feeder), body)
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 2, "rejected": [{"symbol": "NOPE", "detail": "Unknown instrument."}]}
    aapl = Mark.objects.get(symbol="AAPL")
    assert (aapl.last, aapl.bid, aapl.ask, aapl.source) == (
        Decimal("150.25"),
        Decimal("150.24"),
        Decimal("150.26"),
        "api:vendor1",
    )
    assert Mark.objects.get(symbol="MSFT").timestamp > timezone.now() - dt.timedelta(seconds=10)  # now, if not given


NOW = "now"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"last": 150}, "symbol is required"),
        ({"symbol": "AAPL"}, "last is required"),
        ({"symbol": "AAPL", "last": "abc"}, "last must be a number"),
        ({"symbol": "AAPL", "last": True}, "last must be a number"),
        ({"symbol": "AAPL", "last": 0}, "last must be positive"),
        ({"symbol": "AAPL", "last": -1}, "last must be positive"),
        ({"symbol": "AAPL", "last": "NaN"}, "last must be a finite number"),
        ({"symbol": "AAPL", "last": "Infinity"}, "last must be a finite number"),
        ({"symbol": "AAPL", "last": 150, "bid": 151, "ask": 150.5}, "bid must not be above ask"),
        ({"symbol": "AAPL", "last": 150, "timestamp": "+60s"}, "more than 5 seconds in the future"),
        ({"symbol": "AAPL", "last": 150, "timestamp": "yesterday"}, "ISO 8601"),
        ({"symbol": "AAPL", "last": 150, "timestamp": "2026-13-01T00:00:00Z"}, "ISO 8601"),
        ({"symbol": "AAPL", "last": 150, "timestamp": "2026-11-27T10:00:00"}, "UTC offset"),
        ({"symbol": "AAPL", "last": 150, "price": 1}, "unknown field"),
        ("AAPL", "must be an object"),
    ],
)
def test_push_when_a_row_is_bad_then_400_names_it_and_nothing_stored(
    instruments: Any, feeder: Any, client_for: Callable[[Any], Any], row: Any, message: str
) -> None:
    if isinstance(row, dict) and row.get("timestamp") == "+60s":
        row = {**row, "timestamp": (timezone.now() + dt.timedelta(seconds=60)).isoformat()}
    good = {"symbol": "MSFT", "last": 300}
    response = _push(client_for(feeder), {"prices": [good, good, row]})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and set(body["rows"]) == {"2"}
    assert message in body["rows"]["2"]
    assert not Mark.objects.exists() and not Bar.objects.exists()


def test_push_raw_nan_in_json_is_refused(instruments: Any, feeder: Any, client_for: Callable[[Any], Any]) -> None:
    response = client_for(feeder).post(
        URL, data='{"prices": [{"symbol": "AAPL", "last": NaN}]}', content_type="application/json"
    )
    assert response.status_code == 400
    assert not Mark.objects.exists()


@pytest.mark.parametrize("body", [[], {}, {"prices": {}}, {"prices": []}, {"prices": "AAPL"}])
def test_push_when_body_malformed_then_400(
    instruments: Any, feeder: Any, client_for: Callable[[Any], Any], body: Any
) -> None:
    assert _push(client_for(feeder), body).status_code == 400


def test_push_names_every_bad_row(instruments: Any, feeder: Any, client_for: Callable[[Any], Any]) -> None:
    rows = [{"symbol": "AAPL", "last": 1}, {"symbol": "AAPL", "last": 0}, {"symbol": "AAPL"}]
    assert _push(client_for(feeder), {"prices": rows}).json()["rows"] == {
        "1": "last must be positive",
        "2": "last is required",
    }


@pytest.mark.parametrize(("role", "status"), [("TRADER", 403), ("RISK_MANAGER", 403), ("COMPLIANCE", 403)])
def test_push_when_role_may_not_then_403(
    instruments: Any, make_user: Callable[..., Any], client_for: Callable[[Any], Any], role: str, status: int
) -> None:
    response = _push(client_for(make_user("u1", role)), {"prices": [{"symbol": "AAPL", "last": 150}]})
    assert response.status_code == status
    assert not Mark.objects.exists()


def test_push_when_admin_then_200(instruments: Any, admin_user: Any, client_for: Callable[[Any], Any]) -> None:
    assert _push(client_for(admin_user), {"prices": [{"symbol": "AAPL", "last": 150}]}).status_code == 200


def test_push_when_admin_role_without_superuser_then_200(
    instruments: Any, make_user: Callable[..., Any], client_for: Callable[[Any], Any]
) -> None:
    user = make_user("admin2", "ADMIN")
    assert _push(client_for(user), {"prices": [{"symbol": "AAPL", "last": 150}]}).status_code == 200


def test_push_when_anonymous_then_401(instruments: Any, api: Any) -> None:
    assert _push(api, {"prices": [{"symbol": "AAPL", "last": 150}]}).status_code == 401


# --- GET quote -----------------------------------------------------------------------------------------------


def test_quote_when_fresh_then_not_stale(instruments: Any, trader: Any, client_for: Callable[[Any], Any]) -> None:
    now = timezone.now()
    prices.record([Quote("AAPL", Decimal("150.5"), now, "feed", Decimal("150.49"), Decimal("150.51"))])
    body = client_for(trader).get(f"{URL}/AAPL").json()
    assert body["symbol"] == "AAPL" and body["stale"] is False and body["source"] == "feed"
    assert (Decimal(str(body["last"])), Decimal(str(body["bid"])), Decimal(str(body["ask"]))) == (
        Decimal("150.5"),
        Decimal("150.49"),
        Decimal("150.51"),
    )


def test_quote_when_older_than_staleness_then_stale(
    instruments: Any, trader: Any, client_for: Callable[[Any], Any]
) -> None:
    prices.record([Quote("AAPL", Decimal("150.5"), timezone.now() - dt.timedelta(seconds=61), "feed")])
    assert client_for(trader).get(f"{URL}/aapl").json()["stale"] is True


def test_quote_when_no_price_yet_then_nulls_and_stale(
    instruments: Any, trader: Any, client_for: Callable[[Any], Any]
) -> None:
    response = client_for(trader).get(f"{URL}/SAP")
    assert response.status_code == 200
    assert response.json() == {
        "symbol": "SAP",
        "bid": None,
        "ask": None,
        "last": None,
        "timestamp": None,
        "source": None,
        "stale": True,
    }


def test_quote_when_unknown_instrument_then_404(
    instruments: Any, trader: Any, client_for: Callable[[Any], Any]
) -> None:
    assert client_for(trader).get(f"{URL}/NOPE").status_code == 404


def test_quote_when_anonymous_then_401(instruments: Any, api: Any) -> None:
    assert api.get(f"{URL}/AAPL").status_code == 401


# --- GET history ---------------------------------------------------------------------------------------------


def test_history_minute_bars_oldest_first_from_since(
    instruments: Any, trader: Any, client_for: Callable[[Any], Any]
) -> None:
    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
    for minute, price in enumerate([100, 101, 102]):
        prices.record([Quote("AAPL", Decimal(price), start + dt.timedelta(minutes=minute, seconds=5), "feed")])
    client = client_for(trader)
    body = client.get(f"{URL}/AAPL/history").json()
    assert body["symbol"] == "AAPL" and body["interval"] == "1m" and body["truncated"] is False
    assert [b["close"] for b in body["bars"]] == [100, 101, 102]
    assert set(body["bars"][0]) == {"time", "open", "high", "low", "close"}
    since = (start + dt.timedelta(minutes=1)).isoformat()
    later = client.get(f"{URL}/AAPL/history", {"since": since}).json()
    assert [b["close"] for b in later["bars"]] == [101, 102]


def test_history_daily_interval(instruments: Any, trader: Any, client_for: Callable[[Any], Any]) -> None:
    day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=3)
    Bar.objects.create(symbol="AAPL", interval="1d", start=day, open=1, high=2, low=1, close=2)
    Bar.objects.create(symbol="AAPL", interval="1m", start=day, open=1, high=2, low=1, close=2)
    body = client_for(trader).get(f"{URL}/AAPL/history", {"interval": "1d"}).json()
    assert body["interval"] == "1d" and len(body["bars"]) == 1


@pytest.mark.parametrize(
    "params", [{"interval": "5m"}, {"since": "yesterday"}, {"since": "2026-11-27T10:00:00"}, {"since": "2026-02-30"}]
)
def test_history_when_bad_parameters_then_400(
    instruments: Any, trader: Any, client_for: Callable[[Any], Any], params: dict[str, str]
) -> None:
    assert client_for(trader).get(f"{URL}/AAPL/history", params).status_code == 400


def test_history_when_unknown_instrument_then_404(
    instruments: Any, trader: Any, client_for: Callable[[Any], Any]
) -> None:
    assert client_for(trader).get(f"{URL}/NOPE/history").status_code == 404


def test_history_is_capped(instruments: Any, trader: Any, client_for: Callable[[Any], Any], monkeypatch: Any) -> None:
    from market import history

    monkeypatch.setattr(history.bars, "__kwdefaults__", {"limit": 2})
    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
    for minute in range(3):
        prices.record([Quote("AAPL", Decimal(100 + minute), start + dt.timedelta(minutes=minute), "feed")])
    body = client_for(trader).get(f"{URL}/AAPL/history").json()
    assert len(body["bars"]) == 2 and body["truncated"] is True
