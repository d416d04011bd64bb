"""The risk manager's pages for all-day use (issue 18.5): a reason on every limit change, a confirmation when a new
limit is below usage (firm form and scope form), the history of a scope from its events, no "Reason: None",
money and times written for people, the exposure chart's axes, the halt banner, the largest position's symbol."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.models import Event
from books.models import Book, Desk
from core import formats
from risk import admin_views
from risk.models import ExposureSnapshot, Position
from risk.store import firm_limits
from tests.support.market import price

pytestmark = pytest.mark.django_db

FIRM_FORM_FIELDS = {
    "max_position_size": "1000000.00",
    "max_daily_volume": "10000000.00",
    "max_net_exposure": "5000000.00",
    "max_gross_exposure": "15000000.00",
}
HISTORY = "/admin/risk/risklimits/history/"
SCOPES = "/admin/risk/risklimits/scopes/"
STATES = "/admin/risk/risklimits/trading-states/"


def _firm_url(suffix: str = "change/") -> str:
    return f"/admin/risk/risklimits/{firm_limits().pk}/{suffix}"


@pytest.fixture
def desk_eq(risk_manager: Any) -> Desk:
    eq, _ = Desk.objects.get_or_create(code="EQ", defaults={"name": "Equities"})
    Book.objects.get_or_create(code="MAIN", defaults={"name": "Main book", "desk": eq})
    assign_perm("books.manage_desk", risk_manager, eq)
    return eq


def _firm_position(symbol: str = "AAPL", quantity: str = "100", at: str = "150") -> None:
    price(symbol, at)
    Position.objects.create(scope="firm", symbol=symbol, quantity=Decimal(quantity), average_price=Decimal(at))


# A reason on every limit change


def test_firm_limits_form_when_no_reason_then_refused_and_unchanged(risk_manager: Any, staff_client: Any) -> None:
    before = firm_limits().max_position_size
    response = staff_client(risk_manager).post(_firm_url(), {**FIRM_FORM_FIELDS, "max_position_size": "900000"})
    assert response.status_code == 200
    assert "A reason is required" in response.content.decode()
    assert firm_limits().max_position_size == before
    assert not Event.objects.filter(event_type="LIMITS_CHANGED").exists()


def test_firm_limits_api_when_no_reason_then_still_accepted(client_for: Any, risk_manager: Any) -> None:
    # v1 keeps the reason optional (API.md): only the back-office forms require one.
    response = client_for(risk_manager).patch("/api/v1/risk/limits", {"max_position_size": "900000"}, format="json")
    assert response.status_code == 200


# Below current usage: a warning and a confirmation step


def test_firm_limits_form_when_below_usage_then_warns_and_needs_the_confirmation(
    risk_manager: Any, staff_client: Any
) -> None:
    _firm_position()  # a position worth 15,000.00
    client = staff_client(risk_manager)
    body = {**FIRM_FORM_FIELDS, "max_position_size": "10000", "reason": "cut"}
    review = client.post(_firm_url(), body)
    page = review.content.decode()
    assert review.status_code == 200 and 'id="limits-below-warning"' in page
    assert "15,000.00 USD" in page and 'value="max_position_size=10000' in page
    assert firm_limits().max_position_size != Decimal("10000")
    # Saving again without the confirmation button, or confirming another value, still only warns.
    assert client.post(_firm_url(), body).status_code == 200
    assert client.post(_firm_url(), {**body, "confirm_below": "max_position_size=5000.00"}).status_code == 200
    token = re.search(r'name="confirm_below" value="([^"]+)"', page)
    assert token is not None
    saved = client.post(_firm_url(), {**body, "confirm_below": token.group(1)})
    assert saved.status_code == 302
    assert firm_limits().max_position_size == Decimal("10000")


def test_firm_limits_form_when_above_usage_then_saved_at_once(risk_manager: Any, staff_client: Any) -> None:
    _firm_position()
    response = staff_client(risk_manager).post(
        _firm_url(), {**FIRM_FORM_FIELDS, "max_position_size": "20000", "reason": "room"}
    )
    assert response.status_code == 302


# History


def test_firm_history_when_three_changes_then_three_rows_with_who_when_old_new_reason(
    risk_manager: Any, staff_client: Any
) -> None:
    client = staff_client(risk_manager)
    for value, reason in [("900000", "first"), ("800000", "second"), ("700000", "third")]:
        assert (
            client.post(_firm_url(), {**FIRM_FORM_FIELDS, "max_position_size": value, "reason": reason}).status_code
            == 302
        )
    # Django's HISTORY button leads to the history from the events (its own log would be empty).
    button = client.get(_firm_url("history/"))
    assert button.status_code == 302 and button["Location"] == f"{HISTORY}firm/"
    response = client.get(f"{HISTORY}firm/")
    rows = response.context["rows"]
    assert [r["reason"] for r in rows] == ["third", "second", "first"]
    assert rows[0]["who"] == "risk1"
    assert rows[0]["changes"][0]["old"] == "800000.00" and rows[0]["changes"][0]["new"] == "700000.00"
    page = response.content.decode()
    assert "800,000.00" in page and "700,000.00" in page and " UTC" in page
    assert "No change" not in page


def test_firm_history_when_kill_switch_toggled_then_one_row_each_way(risk_manager: Any, staff_client: Any) -> None:
    client = staff_client(risk_manager)
    for enabled in ("1", "0"):
        client.post("/admin/risk/risklimits/kill-switch/", {"enabled": enabled, "reason": "drill", "confirm": "yes"})
    rows = client.get(f"{HISTORY}firm/").context["rows"]
    states = [(r["changes"][0]["old"], r["changes"][0]["new"]) for r in rows]
    assert states == [("HALTED", "ACTIVE"), ("ACTIVE", "HALTED")]


def test_scope_history_when_limits_and_state_changed_then_both_listed(
    desk_eq: Desk, risk_manager: Any, staff_client: Any
) -> None:
    client = staff_client(risk_manager)
    client.post(f"{SCOPES}desk:EQ/", {"max_order_value": "25000", "reason": "fat finger"})
    client.post(STATES, {"scope": "desk:EQ", "state": "REDUCING", "reason": "month end"})
    rows = client.get(f"{HISTORY}desk:EQ/").context["rows"]
    assert [r["what"] for r in rows] == ["Trading state", "Limits"]
    assert rows[0]["changes"][0]["new"] == "REDUCING" and rows[1]["reason"] == "fat finger"
    assert client.get(f"{HISTORY}desk:EQ/").status_code == 200


def test_scope_history_when_desk_not_granted_then_403(desk_eq: Desk, risk_manager: Any, staff_client: Any) -> None:
    Desk.objects.create(code="FX", name="Foreign exchange")
    assert staff_client(risk_manager).get(f"{HISTORY}desk:FX/").status_code == 403


# Compliance's view of the firm limits


def test_firm_limits_when_compliance_then_no_reason_none_and_last_reason_shown(
    risk_manager: Any, compliance: Any, staff_client: Any
) -> None:
    staff_client(risk_manager).post(_firm_url(), {**FIRM_FORM_FIELDS, "max_position_size": "900000", "reason": "q4"})
    page = staff_client(compliance).get(_firm_url()).content.decode()
    assert "None" not in re.sub(r"<[^>]+>", " ", page).split()
    assert "q4" in page and " UTC" in page


# Money and times


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (Decimal("1234567.891"), "USD", "1,234,567.89 USD"),
        (Decimal("-0.005"), "", "-0.00"),
        ("15000.00000000", "EUR", "15,000.00 EUR"),
        (None, "USD", "–"),
    ],
)
def test_money_when_formatted_then_separators_two_decimals_currency(value: Any, currency: str, text: str) -> None:
    assert formats.money(value, currency) == text


def test_utc_time_when_formatted_then_seconds_and_utc() -> None:
    at = dt.datetime(2026, 11, 28, 20, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert formats.utc_time(at) == "2026-11-28 19:04:05 UTC"


def test_dashboard_when_position_then_money_right_aligned_and_largest_names_symbol(
    risk_manager: Any, staff_client: Any
) -> None:
    _firm_position("MSFT", "100", "300")
    _firm_position("AAPL", "10", "150")
    page = staff_client(risk_manager).get("/admin/risk/risklimits/dashboard/").content.decode()
    assert 'data-largest-symbol="MSFT"' in page
    assert '<td class="itirp-num">30,000.00</td>' in page  # MSFT's market value
    assert "30,000.00 USD" in page
    assert re.search(r"Updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)


# The exposure chart


def test_chart_when_fifteen_minutes_of_data_then_axis_spans_them_and_limits_inside(db: Any) -> None:
    now = timezone.now()
    for minutes in range(15, 0, -1):
        ExposureSnapshot.objects.create(
            taken_at=now - dt.timedelta(minutes=minutes),
            net_exposure=Decimal(1000),
            gross_exposure=Decimal(2000),
            daily_volume=Decimal(0),
            open_volume=Decimal(0),
            largest_position=Decimal(0),
        )
    limits = firm_limits()
    chart = admin_views.exposure_chart(
        now=now, current={"net_exposure": Decimal(1000), "gross_exposure": Decimal(2000)}, limits=limits
    )
    first_x = float(chart["net"].split()[0].split(",")[0])
    assert first_x == 0.0 and chart["now_x"] == chart["width"]  # the data fill the width
    assert 13 <= chart["span_minutes"] <= 16
    assert 3 <= len(chart["ticks"]) <= 8
    for line in chart["limit_lines"]:
        assert 0 <= line["y"] <= chart["height"] and "limit" in line["label"]


def test_chart_when_only_now_then_five_minutes_and_still_drawn(db: Any) -> None:
    chart = admin_views.exposure_chart(
        now=timezone.now(), current={"net_exposure": Decimal(0), "gross_exposure": Decimal(0)}, limits=firm_limits()
    )
    assert chart["points"] == 1 and chart["span_minutes"] == 5.0 and chart["ticks"]


# The halt banner on every back-office page


def test_banner_when_firm_halted_then_on_other_pages_and_gone_when_active(
    risk_manager: Any, compliance: Any, staff_client: Any
) -> None:
    client = staff_client(risk_manager)
    assert 'id="itirp-halt-banner"' not in client.get("/admin/").content.decode()
    client.post("/admin/risk/risklimits/kill-switch/", {"enabled": "1", "reason": "venue down", "confirm": "yes"})
    for url in ("/admin/", SCOPES, "/admin/orders/order/"):
        page = staff_client(compliance).get(url).content.decode()
        assert 'id="itirp-halt-banner"' in page and "venue down" in page, url
    client.post("/admin/risk/risklimits/kill-switch/", {"enabled": "0", "reason": "back", "confirm": "yes"})
    assert 'id="itirp-halt-banner"' not in client.get("/admin/").content.decode()


def test_banner_when_desk_halted_then_named(desk_eq: Desk, risk_manager: Any, staff_client: Any) -> None:
    client = staff_client(risk_manager)
    client.post(STATES, {"scope": "desk:EQ", "state": "HALTED", "reason": "breach", "confirm": "yes"})
    page = client.get("/admin/").content.decode()
    assert 'data-halted="desk:EQ"' in page


def test_banner_when_signed_out_then_login_page_without_it(risk_manager: Any, staff_client: Any) -> None:
    staff_client(risk_manager).post(
        "/admin/risk/risklimits/kill-switch/", {"enabled": "1", "reason": "x", "confirm": "yes"}
    )
    from django.test import Client

    assert 'id="itirp-halt-banner"' not in Client().get("/admin/login/").content.decode()


def test_positions_list_when_shown_then_money_two_decimals_and_times_utc(risk_manager: Any, staff_client: Any) -> None:
    _firm_position("AAPL", "100", "150.123456")
    page = staff_client(risk_manager).get("/admin/risk/position/").content.decode()
    assert '<span class="itirp-num">150.12</span>' in page
    assert "150.12345600" not in page and re.search(r"\d\d:\d\d:\d\d UTC", page)


@pytest.mark.parametrize(("gross", "drawn"), [(Decimal(2_000_000), True), (Decimal(2_000), False)])
def test_chart_when_limits_near_or_far_then_drawn_inside_or_named_at_the_top(
    db: Any, gross: Decimal, drawn: bool
) -> None:
    chart = admin_views.exposure_chart(
        now=timezone.now(), current={"net_exposure": gross, "gross_exposure": gross}, limits=firm_limits()
    )
    gross_line = next(line for line in chart["limit_lines"] if line["kind"] == "gross")
    assert gross_line["drawn"] is drawn and 0 <= gross_line["y"] <= chart["height"]
    assert ("off the scale" in gross_line["label"]) is not drawn
