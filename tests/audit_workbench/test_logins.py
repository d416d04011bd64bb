"""Failed sign-ins carry the username typed in the actor columns (and the account's key when it exists), so
the event list's user filter finds them, and say why: bad password, unknown user, inactive, locked out, or a
right password at /admin/ for a user who may not use the back office (issue 18.3)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts import services
from audit.models import Event, EventType
from tests.conftest import PASSWORDS

pytestmark = pytest.mark.django_db


def api_login(api: Any, username: str, password: str) -> Any:
    return api.post("/api/v1/auth/login", {"username": username, "password": password}, format="json")


def last(event_type: str = EventType.LOGIN_FAILED) -> Event:
    event = Event.objects.filter(event_type=event_type).order_by("-sequence").first()
    assert event is not None
    return event


def test_bad_password_when_api_then_username_and_id_in_actor_columns(trader, api) -> None:
    assert api_login(api, "trader1", "wrong").status_code == 401
    event = last()
    assert (event.actor_username, event.actor_id) == ("trader1", trader.pk)
    assert event.payload == {"username": "trader1", "reason": "bad_password"}


def test_unknown_user_when_api_then_username_without_id(api, db) -> None:
    assert api_login(api, "nobody", "x").status_code == 401
    event = last()
    assert (event.actor_username, event.actor_id, event.payload["reason"]) == ("nobody", None, "unknown_user")


def test_inactive_user_when_api_then_reason_inactive(trader, api) -> None:
    services.user_deactivate(actor=None, user=trader, reason="left")
    assert api_login(api, "trader1", PASSWORDS["TRADER"]).status_code == 401
    assert last().payload["reason"] == "inactive"


def test_locked_out_when_limit_reached_then_locked_event_with_username(trader, api, settings) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        api_login(api, "trader1", "wrong")
    assert api_login(api, "trader1", PASSWORDS["TRADER"]).status_code == 429
    locked = last(EventType.LOGIN_LOCKED_OUT)
    assert locked.actor_username == "trader1" and locked.payload["reason"] == "locked_out"


def test_trader_right_password_at_admin_then_not_staff_not_an_ordinary_failure(trader) -> None:
    response = Client().post("/admin/login/", {"username": "trader1", "password": PASSWORDS["TRADER"]})
    assert response.status_code == 200  # the form again, with its error
    event = last()
    assert event.payload == {"username": "trader1", "reason": "not_staff", "channel": "admin"}
    assert event.actor_id == trader.pk


def test_admin_wrong_password_then_bad_password_on_channel_admin(compliance) -> None:
    Client().post("/admin/login/", {"username": "compliance1", "password": "nope"})
    assert last().payload == {"username": "compliance1", "reason": "bad_password", "channel": "admin"}


def test_user_filter_when_username_then_failed_sign_ins_are_listed(trader, compliance, api) -> None:
    api_login(api, "trader1", "wrong")
    Client().post("/admin/login/", {"username": "trader1", "password": PASSWORDS["TRADER"]})
    staff = Client()
    staff.force_login(compliance)
    page = staff.get("/admin/audit/event/", {"user": "trader1", "event_type": "LOGIN_FAILED"})
    reasons = [e.payload["reason"] for e in page.context["cl"].result_list]
    assert reasons == ["not_staff", "bad_password"]
    assert "trader1: not staff" in page.content.decode()
