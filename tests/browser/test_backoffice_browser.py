"""The back office in a real browser: risk managers, compliance and a trader, against a live server."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from typing import Any

import pytest

from audit.models import Event
from tests.conftest import PASSWORDS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _order(client_for: Any, trader: Any, **fields: Any) -> dict[str, Any]:
    api = client_for(trader)
    body = {"symbol": "AAPL", "side": "BUY", "quantity": "10", "price": "150", **fields}
    response = api.post("/api/v1/orders", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_risk_manager_changes_limit_in_form_then_api_order_over_it_rejected(
    page: Any, admin_login: Any, shot: Any, risk_manager: Any, trader: Any, client_for: Any
) -> None:
    from risk.store import firm_limits

    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.click("text=Risk limits")
    page.wait_for_selector("#id_max_position_size")
    assert "Now:" in page.inner_text(".field-max_position_size")
    page.fill("#id_max_position_size", "1000")
    page.fill("#id_reason", "tighten single-name risk")
    shot(page, "limits-form")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    shot(page, "limits-saved")
    assert firm_limits().max_position_size == Decimal("1000")
    changed = Event.objects.get(event_type="LIMITS_CHANGED")
    assert changed.actor_username == "risk1"
    change = changed.payload["changed"]["max_position_size"]
    assert (Decimal(change["old"]), Decimal(change["new"])) == (Decimal("1000000"), Decimal("1000"))

    result = _order(client_for, trader, quantity="10", price="150")  # 1,500 > 1,000
    assert result["status"] == "REJECTED"
    assert "position" in result["message"].lower()


def test_risk_manager_turns_kill_switch_on_then_api_order_rejected_and_open_orders_cancelled(
    page: Any, admin_login: Any, shot: Any, risk_manager: Any, trader: Any, client_for: Any
) -> None:
    from orders.models import Order

    before = _order(client_for, trader)
    assert before["status"] == "APPROVED"

    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.click(".itirp-tiles >> text=Kill switch")
    assert page.inner_text("#kill-switch-state") == "OFF"
    page.click("input[name=_review]")  # no reason yet: the browser refuses to send the form
    assert page.locator("#id_reason:invalid").count() == 1
    assert page.locator("#kill-switch-confirm").count() == 0
    page.fill("#id_reason", "venue sends bad fills")
    page.click("input[name=_review]")
    page.wait_for_selector("#kill-switch-confirm")
    shot(page, "confirm")
    assert Order.objects.get(pk=before["order_id"]).status == "APPROVED"  # nothing happened yet
    page.click("input[name=_confirm]")
    page.wait_for_selector("#kill-switch-state[data-state=on]")
    shot(page, "on")
    assert "1 open order(s) cancelled" in page.inner_text(".messagelist")

    assert Order.objects.get(pk=before["order_id"]).status == "CANCELLED"
    after = _order(client_for, trader, quantity="1")
    assert after["status"] == "REJECTED" and "Kill switch" in after["message"]
    event = Event.objects.get(event_type="KILL_SWITCH_ACTIVATED")
    assert (event.actor_username, event.payload["reason"]) == ("risk1", "venue sends bad fills")

    page.goto("/admin/risk/risklimits/dashboard/")
    page.wait_for_selector("[data-kill-switch=on]")
    shot(page, "dashboard")


def test_dashboard_refreshes_itself_without_reload(
    page: Any, admin_login: Any, shot: Any, risk_manager: Any, trader: Any, client_for: Any
) -> None:
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.goto("/admin/risk/risklimits/dashboard/")
    page.evaluate("window.__marker = 'same page'")
    assert page.get_attribute("[data-open-orders]", "data-open-orders") == "0"
    _order(client_for, trader)
    page.wait_for_selector("[data-open-orders='1']", timeout=15_000)
    assert page.evaluate("window.__marker") == "same page"  # swapped by htmx, not reloaded
    shot(page, "refreshed")


def test_compliance_filters_events_opens_trail_and_exports_csv(
    page: Any, admin_login: Any, shot: Any, compliance: Any, trader: Any, client_for: Any
) -> None:
    order = _order(client_for, trader)
    _order(client_for, trader, symbol="MSFT", quantity="5")

    admin_login(page, "compliance1", PASSWORDS["COMPLIANCE"])
    page.click(".itirp-tiles >> text=Audit events")
    page.wait_for_selector("#result_list")
    page.fill("input[name=symbol]", "aapl")
    page.press("input[name=symbol]", "Enter")
    page.wait_for_url(re.compile(r"symbol=aapl"))
    shot(page, "symbol")
    # one type, chosen in the grouped select (issue 18: fifty links were a wall)
    page.select_option("#type-filter select[name=event_type]", "ORDER_CREATED")
    page.click("#type-filter button[type=submit]")
    page.wait_for_url(re.compile(r"event_type=ORDER_CREATED"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    shot(page, "filtered")

    page.click("#result_list tbody tr >> a[title='trail of this order']")
    page.wait_for_selector("#trail")
    steps = page.locator("#trail li")
    assert [steps.nth(i).get_attribute("data-event-type") for i in range(steps.count())][:3] == [
        "ORDER_CREATED",
        "RISK_CHECK_STARTED",
        "RISK_CHECK_PASSED",
    ]
    assert order["order_id"] in page.url
    shot(page, "trail")

    page.go_back()
    with page.expect_download() as download_info:
        page.click("#export-csv")
    text = open(download_info.value.path(), encoding="utf-8").read()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["event_type"], r["symbol"]) for r in rows] == [("ORDER_CREATED", "AAPL")]
    exported = Event.objects.get(event_type="AUDIT_EXPORTED")
    assert exported.actor_username == "compliance1" and exported.payload["rows"] == 1
    assert exported.payload["filter"] == {"event_type": ["ORDER_CREATED"], "symbol": ["aapl"]}


def test_compliance_cannot_change_an_event(page: Any, admin_login: Any, shot: Any, compliance: Any) -> None:
    event = Event.objects.order_by("sequence").first()
    admin_login(page, "compliance1", PASSWORDS["COMPLIANCE"])
    page.goto(f"/admin/audit/event/{event.pk}/change/")
    page.wait_for_selector("#content-main")
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("form input[type=text], form textarea").count() == 0
    assert page.locator(".deletelink").count() == 0
    shot(page, "event-read-only")
    response = page.goto("/admin/audit/event/add/")
    assert response.status == 403
    page.goto("/admin/audit/event/")
    assert page.locator("select[name=action]").count() == 0  # no bulk delete


def test_trader_cannot_log_in_to_admin(page: Any, admin_login: Any, shot: Any, trader: Any) -> None:
    admin_login(page, "trader1", PASSWORDS["TRADER"])
    page.wait_for_selector(".errornote")
    assert "staff account" in page.inner_text(".errornote")
    shot(page, "refused")
    page.goto("/admin/")
    assert "/admin/login/" in page.url
