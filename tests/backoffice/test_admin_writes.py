"""Every back-office write goes through its service: validated, and recorded as an event with the actor."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from audit.models import Event

pytestmark = pytest.mark.django_db

LIMITS = {
    "max_position_size": "2000.00",
    "max_daily_volume": "10000000.00",
    "max_net_exposure": "5000000.00",
    "max_gross_exposure": "15000000.00",
}


def _limits_url() -> str:
    from risk.store import firm_limits

    return f"/admin/risk/risklimits/{firm_limits().pk}/change/"


def test_limits_form_when_saved_then_service_records_old_and_new_values(risk_manager: Any, staff_client: Any) -> None:
    from risk.store import firm_limits

    response = staff_client(risk_manager).post(_limits_url(), {**LIMITS, "reason": "tighten AAPL"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert firm_limits().max_position_size == Decimal("2000.00")
    event = Event.objects.filter(event_type="LIMITS_CHANGED").get()
    assert event.actor_username == "risk1"
    assert event.payload["changed"] == {"max_position_size": {"old": "1000000.00", "new": "2000.00"}}
    assert event.payload["reason"] == "tighten AAPL"


@pytest.mark.parametrize(
    ("value", "message"), [("0", "Must be a positive number."), ("-5", "Must be a positive number.")]
)
def test_limits_form_when_invalid_then_field_error_and_nothing_changed(
    risk_manager: Any, staff_client: Any, value: str, message: str
) -> None:
    from risk.store import firm_limits

    response = staff_client(risk_manager).post(_limits_url(), {**LIMITS, "max_net_exposure": value})
    assert response.status_code == 200
    assert message in response.context["adminform"].form.errors["max_net_exposure"]
    assert firm_limits().max_net_exposure == Decimal("5000000")
    assert not Event.objects.filter(event_type="LIMITS_CHANGED").exists()


def test_limits_form_when_open_order_then_usage_shown_beside_each_limit(
    risk_manager: Any, staff_client: Any, open_order: Any
) -> None:
    page = staff_client(risk_manager).get(_limits_url()).content.decode()
    for name in LIMITS:
        assert f'data-usage="{name}"' in page
    # The open order (10 x 150) counts against the day's volume: 1,500.00 of 10,000,000.
    assert "1,500.00 USD</strong> (today&#x27;s volume incl. open orders)" in page


def test_kill_switch_when_no_reason_then_refused_and_unchanged(risk_manager: Any, staff_client: Any) -> None:
    from risk.selectors import risk_state

    response = staff_client(risk_manager).post(
        "/admin/risk/risklimits/kill-switch/", {"enabled": "1", "reason": " ", "confirm": "yes"}
    )
    assert response.status_code == 200
    assert "A reason is required" in response.content.decode()
    assert not risk_state().kill_switch_enabled


def test_kill_switch_when_reviewed_then_confirmed_then_on_and_open_orders_cancelled(
    risk_manager: Any, staff_client: Any, open_order: Any
) -> None:
    from risk.selectors import risk_state

    client = staff_client(risk_manager)
    review = client.post("/admin/risk/risklimits/kill-switch/", {"enabled": "1", "reason": "venue incident"})
    assert review.status_code == 200 and "Please confirm" in review.content.decode()
    assert not risk_state().kill_switch_enabled  # the first step changes nothing
    done = client.post(
        "/admin/risk/risklimits/kill-switch/", {"enabled": "1", "reason": "venue incident", "confirm": "yes"}
    )
    assert done.status_code == 302
    assert risk_state().kill_switch_enabled
    open_order.refresh_from_db()
    assert open_order.status == "CANCELLED"
    event = Event.objects.get(event_type="KILL_SWITCH_ACTIVATED")
    assert event.actor_username == "risk1" and event.payload["reason"] == "venue incident"
    assert Event.objects.filter(event_type="ORDER_CANCELLED", causation_id=event.event_id).count() == 1
    page = client.get("/admin/risk/risklimits/kill-switch/").content.decode()
    assert 'data-state="on"' in page


def test_kill_switch_when_role_may_only_view_then_post_refused(make_user: Any, staff_client: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    from risk.selectors import risk_state

    user = make_user("viewer", "RISK_MANAGER")
    group = Group.objects.get(name="RISK_MANAGER")
    group.permissions.remove(Permission.objects.get(codename="toggle_kill_switch"))
    client = staff_client(user)
    assert "may look at the kill switch" in client.get("/admin/risk/risklimits/kill-switch/").content.decode()
    response = client.post("/admin/risk/risklimits/kill-switch/", {"enabled": "1", "reason": "x", "confirm": "yes"})
    assert response.status_code == 403
    assert not risk_state().kill_switch_enabled


def test_order_cancel_action_when_used_then_order_cancel_service_records_event(
    risk_manager: Any, staff_client: Any, open_order: Any
) -> None:
    response = staff_client(risk_manager).post(
        "/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [str(open_order.pk)]}
    )
    assert response.status_code == 302
    open_order.refresh_from_db()
    assert open_order.status == "CANCELLED"
    assert Event.objects.get(event_type="ORDER_CANCELLED", order_id=open_order.pk).actor_username == "risk1"


def test_admin_when_creating_user_then_user_create_service_sets_role_and_records(
    admin_user: Any, staff_client: Any
) -> None:
    from accounts.models import User

    response = staff_client(admin_user).post(
        "/admin/accounts/user/add/",
        {"username": "newrisk", "email": "n@example.com", "role": "RISK_MANAGER",
         "password1": "A-long-pass-9173", "password2": "A-long-pass-9173"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    user = User.objects.get(username="newrisk")
    assert user.role == "RISK_MANAGER" and user.is_staff and user.check_password("A-long-pass-9173")
    assert list(user.groups.values_list("name", flat=True)) == ["RISK_MANAGER"]
    event = Event.objects.get(event_type="USER_CREATED", payload__username="newrisk")
    assert event.actor_username == "admin"


def test_admin_when_creating_user_with_weak_password_then_refused(admin_user: Any, staff_client: Any) -> None:
    from accounts.models import User

    response = staff_client(admin_user).post(
        "/admin/accounts/user/add/",
        {"username": "weak", "role": "TRADER", "password1": "123", "password2": "123"},
    )
    assert response.status_code == 200
    assert not User.objects.filter(username="weak").exists()


def test_admin_when_changing_role_then_user_set_role_moves_group_and_staff(
    admin_user: Any, trader: Any, staff_client: Any
) -> None:
    response = staff_client(admin_user).post(
        f"/admin/accounts/user/{trader.pk}/change/", {"role": "COMPLIANCE", "is_active": "on"}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    trader.refresh_from_db()
    assert trader.role == "COMPLIANCE" and trader.is_staff
    assert list(trader.groups.values_list("name", flat=True)) == ["COMPLIANCE"]
    event = Event.objects.get(event_type="ROLE_CHANGED")
    assert event.payload["old_role"] == "TRADER" and event.payload["new_role"] == "COMPLIANCE"
    assert event.actor_username == "admin"


def test_admin_when_deactivating_then_sessions_and_tokens_end_at_once(
    admin_user: Any, risk_manager: Any, staff_client: Any, client_for: Any
) -> None:
    victim_admin = Client()
    victim_admin.force_login(risk_manager)
    assert victim_admin.get("/admin/").status_code == 200
    api = client_for(risk_manager)
    assert api.get("/api/v1/risk/limits").status_code == 200

    response = staff_client(admin_user).post(
        f"/admin/accounts/user/{risk_manager.pk}/change/",
        {"role": "RISK_MANAGER", "deactivation_reason": "left the firm"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    risk_manager.refresh_from_db()
    assert not risk_manager.is_active
    assert victim_admin.get("/admin/").status_code == 302  # session ended
    assert api.get("/api/v1/risk/limits").status_code == 401  # token refused
    refresh = api.post("/api/v1/auth/refresh", {"refresh_token": api.tokens["refresh_token"]}, format="json")
    assert refresh.status_code == 401
    event = Event.objects.get(event_type="USER_DEACTIVATED")
    assert event.payload["reason"] == "left the firm" and event.actor_username == "admin"


def test_admin_when_deactivate_action_then_service_records_each(
    admin_user: Any, trader: Any, trader2: Any, staff_client: Any
) -> None:
    client = staff_client(admin_user)
    body = {"action": "deactivate_users", "_selected_action": [str(trader.pk), str(trader2.pk)]}
    review = client.post("/admin/accounts/user/", body)  # an intermediate page asks for the reason first
    assert review.status_code == 200 and 'id="deactivate-form"' in review.content.decode()
    assert not Event.objects.filter(event_type="USER_DEACTIVATED").exists()
    response = client.post("/admin/accounts/user/", {**body, "confirm": "yes", "reason": "desk closed"})
    assert response.status_code == 302
    events = Event.objects.filter(event_type="USER_DEACTIVATED")
    assert events.count() == 2 and {e.payload["reason"] for e in events} == {"desk closed"}


def test_admin_user_form_when_other_fields_posted_then_ignored(admin_user: Any, trader: Any, staff_client: Any) -> None:
    staff_client(admin_user).post(
        f"/admin/accounts/user/{trader.pk}/change/",
        {"role": "TRADER", "is_active": "on", "is_superuser": "on", "is_staff": "on", "username": "evil"},
    )
    trader.refresh_from_db()
    assert (trader.username, trader.is_superuser, trader.is_staff) == ("trader1", False, False)


def test_group_permissions_when_changed_then_recorded(admin_user: Any, staff_client: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.get(name="TRADER")
    keep = list(group.permissions.values_list("pk", flat=True))
    removed = Permission.objects.get(codename="submit_order")
    response = staff_client(admin_user).post(
        f"/admin/auth/group/{group.pk}/change/", {"permissions": [p for p in keep if p != removed.pk]}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not group.permissions.filter(pk=removed.pk).exists()
    event = Event.objects.get(event_type="GROUP_PERMISSIONS_CHANGED", payload__group="TRADER")
    assert event.payload["permissions_removed"] == ["orders.submit_order"]
    assert event.actor_username == "admin"
