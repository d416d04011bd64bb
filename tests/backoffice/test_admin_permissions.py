"""Who may enter the back office and what each role sees (Django test client, no browser)."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import Event

pytestmark = pytest.mark.django_db

PAGES = {
    "dashboard": "/admin/risk/risklimits/dashboard/",
    "kill_switch": "/admin/risk/risklimits/kill-switch/",
    "limits": "/admin/risk/risklimits/1/change/",
    "events": "/admin/audit/event/",
    "export": "/admin/audit/event/export/?format=csv",
    "orders": "/admin/orders/order/",
    "positions": "/admin/risk/position/",
    "users": "/admin/accounts/user/",
    "groups": "/admin/auth/group/",
}
# What each role gets on each page: 200 allowed, 403 refused.
EXPECTED = {
    "RISK_MANAGER": {"dashboard": 200, "kill_switch": 200, "limits": 200, "events": 403, "export": 403,
                     "orders": 200, "positions": 200, "users": 403, "groups": 403},
    "COMPLIANCE": {"dashboard": 200, "kill_switch": 200, "limits": 200, "events": 200, "export": 200,
                   "orders": 200, "positions": 200, "users": 403, "groups": 403},
    "ADMIN": {"dashboard": 200, "kill_switch": 200, "limits": 200, "events": 200, "export": 200,
              "orders": 200, "positions": 200, "users": 200, "groups": 200},
}  # fmt: skip


def test_trader_when_logging_in_to_admin_then_refused(client: Any, trader: Any) -> None:
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "trader1", "password": "trader-pass-1", "next": "/admin/"}
    )
    assert response.status_code == 200
    assert "staff account" in response.content.decode()
    assert client.get("/admin/").status_code == 302
    failed = Event.objects.get(event_type="LOGIN_FAILED")
    assert failed.payload == {"username": "trader1", "channel": "admin", "reason": "not_staff"}


def test_risk_manager_when_logging_in_to_admin_then_in_and_recorded(client: Any, risk_manager: Any) -> None:
    response = client.post("/admin/login/", {"username": "risk1", "password": "risk-pass-1", "next": "/admin/"})
    assert response.status_code == 302 and client.get("/admin/").status_code == 200
    event = Event.objects.get(event_type="LOGIN_SUCCEEDED")
    assert event.actor_username == "risk1" and event.payload == {"role": "RISK_MANAGER", "channel": "admin"}


@pytest.mark.parametrize("role", ["RISK_MANAGER", "COMPLIANCE", "ADMIN"])
def test_staff_role_when_opening_pages_then_sees_only_what_permissions_allow(
    make_user: Any, staff_client: Any, role: str
) -> None:
    from risk.store import firm_limits

    firm_limits()
    client = staff_client(make_user(f"u-{role.lower()}", role))
    got = {}
    for name, url in PAGES.items():
        response = client.get(url.replace("/1/", f"/{firm_limits().pk}/"))
        got[name] = response.status_code
    assert got == EXPECTED[role]


def test_limits_form_when_view_only_role_then_no_save_button(compliance: Any, staff_client: Any) -> None:
    from risk.store import firm_limits

    page = staff_client(compliance).get(f"/admin/risk/risklimits/{firm_limits().pk}/change/").content.decode()
    assert 'name="_save"' not in page


def test_compliance_when_trying_to_change_or_delete_an_event_then_refused(compliance: Any, staff_client: Any) -> None:
    from audit.models import Event

    event = Event.objects.order_by("sequence").first()
    client = staff_client(compliance)
    page = client.get(f"/admin/audit/event/{event.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/audit/event/{event.pk}/change/", {"event_type": "LOGIN_FAILED"}).status_code == 403
    assert client.get("/admin/audit/event/add/").status_code == 403
    assert client.post(f"/admin/audit/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    listing = client.get("/admin/audit/event/")
    assert listing.context["cl"].model_admin.get_actions(listing.wsgi_request) == {}
    event.refresh_from_db()
    assert event.event_type == "USER_CREATED"


def test_orders_and_positions_when_compliance_then_read_only(
    compliance: Any, staff_client: Any, open_order: Any
) -> None:
    client = staff_client(compliance)
    page = client.get(f"/admin/orders/order/{open_order.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/orders/order/{open_order.pk}/change/", {"status": "CANCELLED"}).status_code == 403
    assert client.post(f"/admin/orders/order/{open_order.pk}/delete/", {"post": "yes"}).status_code == 403
