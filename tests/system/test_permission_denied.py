"""Every refusal of a signed-in user is a PERMISSION_DENIED event: API permission classes, checks inside
views, and the admin alike."""

import pytest
from django.contrib.auth.models import Group, Permission

from audit.models import Event, EventType

pytestmark = pytest.mark.django_db


def _denials(user):
    return list(Event.objects.filter(event_type=EventType.PERMISSION_DENIED, actor_username=user.username))


def test_api_permission_class_when_role_lacks_it_then_403_and_one_event_naming_the_permission(trader, client_for):
    response = client_for(trader).get("/api/v1/audit/events")
    assert response.status_code == 403
    [event] = _denials(trader)
    assert event.payload["required"] == ["audit.view_audit_trail"]
    assert event.payload["path"] == "/api/v1/audit/events"


def test_kill_switch_through_limits_when_role_may_edit_limits_only_then_403_and_event(risk_manager, client_for):
    group = Group.objects.get(name="RISK_MANAGER")
    group.permissions.remove(Permission.objects.get(codename="toggle_kill_switch"))
    client = client_for(risk_manager)
    response = client.patch("/api/v1/risk/limits", {"kill_switch_enabled": True}, format="json")
    assert response.status_code == 403
    assert len(_denials(risk_manager)) == 1


def test_admin_page_when_staff_role_lacks_model_permission_then_403_and_event(risk_manager, client):
    client.force_login(risk_manager)
    response = client.get("/admin/audit/event/")
    assert response.status_code == 403
    [event] = _denials(risk_manager)
    assert event.payload["path"] == "/admin/audit/event/"


def test_event_log_line_when_change_rolls_back_then_nothing_is_logged(trader, caplog):
    """Event lines are written on commit: a change that rolls back leaves no line claiming it happened."""
    import logging

    from django.db import transaction

    from audit.services import event_record

    caplog.set_level(logging.INFO)
    try:
        with transaction.atomic():
            event_record(event_type=EventType.PERMISSION_DENIED, actor=trader, payload={"path": "/rolled-back"})
            raise RuntimeError("the change fails after its event was written")
    except RuntimeError:
        pass
    assert "/rolled-back" not in caplog.text
    assert not Event.objects.filter(payload__path="/rolled-back").exists()
