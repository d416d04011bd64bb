"""Password and group-permission changes go through services: validated, recorded, and they end access."""

import pytest
from django.contrib.auth.models import Group, Permission

from accounts import services
from audit.models import Event, EventType
from core.exceptions import ItirpError

pytestmark = pytest.mark.django_db


def test_set_password_when_weak_then_refused_and_nothing_recorded(trader):
    with pytest.raises(ItirpError) as refused:
        services.user_set_password(actor=trader, user=trader, password="123")
    assert "password" in refused.value.fields
    assert not Event.objects.filter(event_type=EventType.PASSWORD_CHANGED).exists()


def test_set_password_when_admin_resets_then_tokens_end_and_event_has_no_password(admin_user, trader, client_for):
    api = client_for(trader)
    assert api.get("/api/v1/orders").status_code == 200
    services.user_set_password(actor=admin_user, user=trader, password="A-much-better-pass-42")
    assert api.get("/api/v1/orders").status_code == 401
    [event] = Event.objects.filter(event_type=EventType.PASSWORD_CHANGED)
    assert event.actor_username == "admin" and event.payload["username"] == "trader1"
    assert event.payload["by_self"] is False
    assert "A-much-better-pass-42" not in str(event.payload)
    trader.refresh_from_db()
    assert trader.check_password("A-much-better-pass-42")


def test_admin_password_form_when_posted_then_service_records_it(admin_user, trader, client):
    client.force_login(admin_user)
    url = f"/admin/accounts/user/{trader.pk}/password/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"new_password1": "Another-good-pass-77", "new_password2": "Another-good-pass-77"})
    assert response.status_code == 302
    assert Event.objects.filter(event_type=EventType.PASSWORD_CHANGED, actor_username="admin").count() == 1


def test_admin_password_form_when_staff_targets_someone_else_then_403(risk_manager, trader, client):
    client.force_login(risk_manager)
    assert client.get(f"/admin/accounts/user/{trader.pk}/password/").status_code == 403


def test_own_password_link_when_signed_in_then_goes_to_the_audited_form(risk_manager, client):
    client.force_login(risk_manager)
    response = client.get("/admin/password_change/")
    assert response.status_code == 302 and response["Location"].endswith(
        f"/admin/accounts/user/{risk_manager.pk}/password/"
    )
    assert client.get(response["Location"]).status_code == 200


def test_group_permissions_when_changed_then_api_follows_and_event_lists_the_difference(admin_user, trader, client_for):
    group = Group.objects.get(name="TRADER")
    keep = [p for p in group.permissions.all() if p.codename != "submit_order"]
    services.group_permissions_set(actor=admin_user, group=group, permissions=keep)
    response = client_for(trader).post(
        "/api/v1/orders", {"symbol": "AAPL", "side": "BUY", "quantity": 1, "price": 1}, format="json"
    )
    assert response.status_code == 403
    [event] = Event.objects.filter(event_type=EventType.GROUP_PERMISSIONS_CHANGED)
    assert event.payload["permissions_removed"] == ["orders.submit_order"]
    assert event.payload["permissions_added"] == []


def test_group_admin_form_when_saved_then_recorded_through_the_service(admin_user, client):
    client.force_login(admin_user)
    group = Group.objects.get(name="COMPLIANCE")
    wanted = list(group.permissions.values_list("pk", flat=True)) + [Permission.objects.get(codename="view_fill").pk]
    response = client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "COMPLIANCE", "permissions": wanted})
    assert response.status_code == 302, response.content[:500]
    [event] = Event.objects.filter(event_type=EventType.GROUP_PERMISSIONS_CHANGED)
    assert event.payload["permissions_added"] == ["orders.view_fill"]
