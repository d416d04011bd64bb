"""Instruments in the back office: risk managers edit them (through market.services, so validated and audited),
compliance reads them, the Restrict / Activate actions record their event, prices and bars are read-only."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from audit.models import Event, EventType
from market.models import Bar, Instrument
from tests.market.conftest import mark

pytestmark = pytest.mark.django_db

PAGES = ["/admin/market/instrument/", "/admin/market/mark/", "/admin/market/bar/"]


def _staff(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _change_url(symbol: str) -> str:
    return f"/admin/market/instrument/{Instrument.objects.get(symbol=symbol).pk}/change/"


@pytest.fixture
def priced(demo: Any) -> None:
    when = dt.datetime(2026, 11, 27, 14, 30, tzinfo=dt.UTC)
    mark("AAPL", "151.25", when)
    Bar.objects.create(
        symbol="AAPL", interval="1m", start=when, open=Decimal(150), high=Decimal(152), low=Decimal(149),
        close=Decimal("151.25"),
    )  # fmt: skip


@pytest.mark.parametrize("role", ["RISK_MANAGER", "COMPLIANCE", "ADMIN"])
def test_staff_when_opening_market_pages_then_they_render(priced: Any, make_user: Any, role: str) -> None:
    client = _staff(make_user(f"u-{role.lower()}", role))
    for page in [*PAGES, _change_url("AAPL"), "/admin/market/instrument/?asset_class__exact=FX&q=usd"]:
        response = client.get(page)
        assert response.status_code == 200, (page, response.status_code)
    listing = client.get("/admin/market/instrument/").content.decode()
    assert "Apple Inc." in listing and "151.25" in listing


def test_trader_when_opening_market_pages_then_refused(priced: Any, trader: Any) -> None:
    client = _staff(trader)
    for page in PAGES:
        assert client.get(page).status_code == 302  # to the admin login: not staff


def test_compliance_when_posting_a_change_then_refused(demo: Any, compliance: Any) -> None:
    response = _staff(compliance).post(_change_url("AAPL"), {"name": "x", "tick_size": "1"})
    assert response.status_code == 403
    assert Instrument.objects.get(symbol="AAPL").tick_size == Decimal("0.01")


def _form(symbol: str, **changes: Any) -> dict[str, Any]:
    instrument = Instrument.objects.get(symbol=symbol)
    data = {
        name: "" if getattr(instrument, name) is None else getattr(instrument, name)
        for name in ("name", "status", "tick_size", "lot_size", "staleness_seconds", "volatility", "initial_price")
    }
    return {**data, **changes}


def test_risk_manager_when_saving_the_form_then_changed_through_the_service(demo: Any, risk_manager: Any) -> None:
    response = _staff(risk_manager).post(_change_url("TSLA"), _form("TSLA", tick_size="0.05", volatility="0.6"))

    assert response.status_code == 302, response.content.decode()[:3000]
    tsla = Instrument.objects.get(symbol="TSLA")
    assert (tsla.tick_size, tsla.volatility) == (Decimal("0.05"), Decimal("0.6"))
    event = Event.objects.get(event_type=EventType.INSTRUMENT_CHANGED)
    assert event.actor_username == "risk1" and event.symbol == "TSLA"
    assert event.payload == {
        "changes": {"tick_size": ["0.01", "0.05"], "volatility": ["0.55", "0.6"]},
        "source": "admin",
    }


def test_risk_manager_when_form_invalid_then_field_error_and_nothing_changed(demo: Any, risk_manager: Any) -> None:
    response = _staff(risk_manager).post(_change_url("TSLA"), _form("TSLA", lot_size="0"))

    assert response.status_code == 200
    assert "must be greater than 0" in response.content.decode()
    assert Instrument.objects.get(symbol="TSLA").lot_size == Decimal(1)
    assert not Event.objects.filter(event_type=EventType.INSTRUMENT_CHANGED).exists()


def test_fixed_for_life_fields_when_posted_then_ignored(demo: Any, risk_manager: Any) -> None:
    data = _form("ESH7", multiplier="10", currency="EUR", name="E-mini S&P 500 March 2027")
    assert _staff(risk_manager).post(_change_url("ESH7"), data).status_code == 302

    future = Instrument.objects.get(symbol="ESH7")
    assert (future.multiplier, future.currency, future.name) == (Decimal(50), "USD", "E-mini S&P 500 March 2027")


def test_superuser_when_adding_an_instrument_then_listed_event(demo: Any, admin_user: Any) -> None:
    data = {
        "symbol": "ORCL", "name": "Oracle Corp.", "asset_class": "EQUITY", "currency": "USD", "status": "ACTIVE",
        "tick_size": "0.01", "lot_size": "1", "multiplier": "1", "staleness_seconds": "60", "volatility": "0.3",
        "initial_price": "", "expiry": "", "underlying": "", "strike": "", "option_right": "",
    }  # fmt: skip
    response = _staff(admin_user).post("/admin/market/instrument/add/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Instrument.objects.get(symbol="ORCL").name == "Oracle Corp."
    event = Event.objects.get(event_type=EventType.INSTRUMENT_LISTED, symbol="ORCL")
    assert event.actor_username == "admin" and event.payload["source"] == "admin"


@pytest.mark.parametrize(
    ("action", "status"), [("restrict_instruments", "RESTRICTED"), ("activate_instruments", "ACTIVE")]
)
def test_status_action_when_run_then_status_set_and_event_recorded(
    demo: Any, risk_manager: Any, action: str, status: str
) -> None:
    from market import services

    services.instrument_set_status("GOOGL", "HALTED", actor=None, reason="setup")
    pks = [Instrument.objects.get(symbol=s).pk for s in ("GOOGL", "JPM")]

    response = _staff(risk_manager).post("/admin/market/instrument/", {"action": action, "_selected_action": pks})

    assert response.status_code == 302
    assert set(Instrument.objects.filter(pk__in=pks).values_list("status", flat=True)) == {status}
    events = Event.objects.filter(event_type=EventType.INSTRUMENT_CHANGED, actor_username="risk1").order_by("sequence")
    expected = {"GOOGL": ["HALTED", status], "JPM": ["ACTIVE", status]}
    changed = {e.symbol: e.payload["changes"]["status"] for e in events}
    assert changed == {s: change for s, change in expected.items() if change[0] != change[1]}
    assert all(e.payload["reason"] for e in events)


def test_compliance_when_running_the_status_action_then_not_offered(demo: Any, compliance: Any) -> None:
    pk = Instrument.objects.get(symbol="JPM").pk
    response = _staff(compliance).post(
        "/admin/market/instrument/", {"action": "restrict_instruments", "_selected_action": [pk]}
    )
    assert response.status_code in (200, 302, 403)
    assert Instrument.objects.get(symbol="JPM").status == "ACTIVE"
    assert not Event.objects.filter(event_type=EventType.INSTRUMENT_CHANGED).exists()
