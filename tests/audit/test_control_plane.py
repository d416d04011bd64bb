"""Every control-plane action is an event with its actor, the client's address and the request's
correlation id (and a causation id where one event causes another)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts import services as accounts
from audit.models import Event, EventType
from core import context
from orders.submission import OrderRequest, order_submit
from tests.conftest import PASSWORDS

pytestmark = pytest.mark.django_db

ADDRESS = "203.0.113.7"


def _client(**extra: Any) -> tuple[APIClient, uuid.UUID]:
    cid = uuid.uuid4()
    client = APIClient(REMOTE_ADDR=ADDRESS, HTTP_X_CORRELATION_ID=str(cid), **extra)
    return client, cid


def _login(user: Any) -> tuple[APIClient, uuid.UUID, dict[str, Any]]:
    client, cid = _client()
    tokens = client.post(
        "/api/v1/auth/login", {"username": user.username, "password": PASSWORDS[user.role]}, format="json"
    ).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    return client, cid, tokens


def _last(event_type: str) -> Event:
    return Event.objects.filter(event_type=event_type).latest("sequence")


def _assert_context(event: Event, *, cid: uuid.UUID, actor: Any | None) -> None:
    assert event.correlation_id == cid
    assert event.address == ADDRESS
    assert event.actor_username == (actor.username if actor else "")
    assert event.actor_id == (actor.pk if actor else None)


def test_login_succeeded(trader: Any) -> None:
    _, cid, _ = _login(trader)
    event = _last(EventType.LOGIN_SUCCEEDED)
    _assert_context(event, cid=cid, actor=trader)
    assert event.payload["role"] == "TRADER"


def test_login_failed_names_the_username_tried(trader: Any) -> None:
    client, cid = _client()
    response = client.post("/api/v1/auth/login", {"username": "trader1", "password": "wrong"}, format="json")
    assert response.status_code == 401
    event = _last(EventType.LOGIN_FAILED)
    # nobody authenticated, but the account tried is named in the actor columns, so the user filter finds it
    # (issue 18), and the event says why
    _assert_context(event, cid=cid, actor=trader)
    assert event.payload["username"] == "trader1" and event.payload["reason"] == "bad_password"


def test_logout(trader: Any) -> None:
    client, cid, tokens = _login(trader)
    assert (
        client.post("/api/v1/auth/logout", {"refresh_token": tokens["refresh_token"]}, format="json").status_code == 200
    )
    _assert_context(_last(EventType.LOGGED_OUT), cid=cid, actor=trader)


def test_access_token_refused() -> None:
    client, cid = _client(HTTP_AUTHORIZATION="Bearer not.a.token")
    assert client.get("/api/v1/risk/metrics").status_code == 401
    event = _last(EventType.TOKEN_REFUSED)
    _assert_context(event, cid=cid, actor=None)
    assert event.payload["path"] == "/api/v1/risk/metrics"


def test_refresh_token_refused() -> None:
    client, cid = _client()
    assert client.post("/api/v1/auth/refresh", {"refresh_token": "forged"}, format="json").status_code == 401
    event = _last(EventType.TOKEN_REFUSED)
    _assert_context(event, cid=cid, actor=None)
    assert event.payload["token"] == "refresh"


def test_permission_denied(trader: Any) -> None:
    client, cid, _ = _login(trader)
    assert client.get("/api/v1/audit/events").status_code == 403
    event = _last(EventType.PERMISSION_DENIED)
    _assert_context(event, cid=cid, actor=trader)
    assert event.payload["required"] == ["audit.view_audit_trail"]


def test_limits_changed_with_old_and_new(risk_manager: Any) -> None:
    client, cid, _ = _login(risk_manager)
    response = client.patch("/api/v1/risk/limits", {"max_position_size": 5000, "reason": "tighter"}, format="json")
    assert response.status_code == 200, response.content
    event = _last(EventType.LIMITS_CHANGED)
    _assert_context(event, cid=cid, actor=risk_manager)
    assert Decimal(event.payload["new"]["max_position_size"]) == Decimal("5000")
    assert Decimal(event.payload["old"]["max_position_size"]) == Decimal("1000000")
    assert event.payload["reason"] == "tighter"


def test_kill_switch_on_and_off_with_reason_and_caused_cancellations(risk_manager: Any, trader: Any) -> None:
    order, _ = order_submit(
        user=trader, request=OrderRequest(symbol="AAPL", side="BUY", quantity=Decimal("1"), price=Decimal("10"))
    )
    client, cid, _ = _login(risk_manager)
    assert (
        client.post("/api/v1/risk/kill-switch", {"enabled": True, "reason": "runaway algo"}, format="json").status_code
        == 200
    )
    on = _last(EventType.KILL_SWITCH_ACTIVATED)
    _assert_context(on, cid=cid, actor=risk_manager)
    assert on.payload["reason"] == "runaway algo" and on.payload["enabled"] is True
    cancelled = _last(EventType.ORDER_CANCELLED)
    assert cancelled.order_id == order.pk and cancelled.causation_id == on.event_id
    assert cancelled.correlation_id == order.correlation_id  # the order's own trail
    assert cancelled.actor_username == risk_manager.username and cancelled.address == ADDRESS
    assert (
        client.post("/api/v1/risk/kill-switch", {"enabled": False, "reason": "fixed"}, format="json").status_code == 200
    )
    off = _last(EventType.KILL_SWITCH_DEACTIVATED)
    _assert_context(off, cid=cid, actor=risk_manager)
    assert off.payload["reason"] == "fixed" and off.payload["enabled"] is False


@pytest.fixture
def bound() -> Any:
    """What CorrelationIdMiddleware binds for an admin request."""
    cid = uuid.uuid4()
    context.bind(correlation=cid, address=ADDRESS)
    yield cid
    context.bind(correlation=None, address=None)


def test_user_created_role_changed_and_deactivated(admin_user: Any, bound: uuid.UUID) -> None:
    user = accounts.user_create(actor=admin_user, username="newbie", password="newbie-pass-1", role="TRADER")
    created = _last(EventType.USER_CREATED)
    _assert_context(created, cid=bound, actor=admin_user)
    assert created.payload["username"] == "newbie" and created.payload["role"] == "TRADER"
    accounts.user_set_role(actor=admin_user, user=user, role="COMPLIANCE")
    changed = _last(EventType.ROLE_CHANGED)
    _assert_context(changed, cid=bound, actor=admin_user)
    assert (changed.payload["old_role"], changed.payload["new_role"]) == ("TRADER", "COMPLIANCE")
    accounts.user_deactivate(actor=admin_user, user=user, reason="left the firm")
    gone = _last(EventType.USER_DEACTIVATED)
    _assert_context(gone, cid=bound, actor=admin_user)
    assert gone.payload["username"] == "newbie" and gone.payload["reason"] == "left the firm"


def test_audit_export_is_recorded(compliance: Any, tmp_path: Path) -> None:
    call_command(
        "export_audit",
        "--since=2000-01-01",
        "--until=2100-01-01",
        f"--out={tmp_path / 'x.jsonl'}",
        f"--actor={compliance.username}",
        "--no-seal",
    )
    event = _last(EventType.AUDIT_EXPORTED)
    assert event.actor_username == compliance.username and event.correlation_id is not None
    assert event.payload["since"].startswith("2000-01-01T00:00:00.000000")
