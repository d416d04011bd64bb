"""Four-eyes in the back-office forms (the same seam as the API): the scope limits form and the firm limits form
say "waiting for approval" and change nothing; the approvals page lists, refuses the requester, and needs a
reason; without the policy the forms save as before."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client, override_settings

from approvals.models import PendingChange
from books.models import Desk
from books.services import grant_add
from risk.models import RiskLimits

pytestmark = pytest.mark.django_db

PENDING = "/admin/approvals/pendingchange/pending/"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def risk2(make_user: Any) -> Any:
    return make_user("risk2", "RISK_MANAGER")


@pytest.fixture
def managers(risk_manager: Any, risk2: Any) -> tuple[Any, Any]:
    for user in (risk_manager, risk2):
        grant_add(actor=None, obj=Desk.objects.get(code="EQ"), user=user, permission="manage")
    return risk_manager, risk2


def _firm_form(limits: RiskLimits, **changes: str) -> dict[str, str]:
    body = {
        name: str(getattr(limits, name))
        for name in ("max_position_size", "max_daily_volume", "max_net_exposure", "max_gross_exposure")
    }
    return {**body, **changes, "reason": "room", "_save": "Save"}


@override_settings(FOUR_EYES_LIMIT_RAISE_PCT=20)
def test_scope_form_when_raise_waits_then_says_waiting_and_nothing_saved(
    managers: tuple[Any, Any],
) -> None:
    risk1, _ = managers
    response = _client(risk1).post(
        "/admin/risk/risklimits/scopes/desk:EQ/", {"max_order_value": "5000", "reason": "new"}
    )
    assert response.status_code == 302
    assert any(m.startswith("Waiting for approval") for m in _messages(response))
    assert not RiskLimits.objects.filter(scope="DESK", scope_key="EQ").exists()
    assert PendingChange.objects.get().scope == "desk:EQ"


@override_settings(FOUR_EYES_LIMIT_RAISE_PCT=20)
def test_firm_form_when_raise_waits_then_says_waiting_not_saved(risk_manager: Any) -> None:
    firm = RiskLimits.objects.get(scope="FIRM", scope_key="")
    body = _firm_form(firm, max_gross_exposure=str(firm.max_gross_exposure * 3))
    response = _client(risk_manager).post(f"/admin/risk/risklimits/{firm.pk}/change/", body)
    assert response.status_code == 302, response.content[:2000]
    messages = _messages(response)
    assert any(m.startswith("Waiting for approval") for m in messages) and not any(
        "successfully" in m for m in messages
    )
    assert RiskLimits.objects.get(pk=firm.pk).max_gross_exposure == firm.max_gross_exposure
    assert PendingChange.objects.get().change["limits"] == {"max_gross_exposure": f"{firm.max_gross_exposure * 3}"}


def test_firm_form_when_policy_off_then_saved_as_before(risk_manager: Any) -> None:
    firm = RiskLimits.objects.get(scope="FIRM", scope_key="")
    new = firm.max_gross_exposure * 3
    response = _client(risk_manager).post(
        f"/admin/risk/risklimits/{firm.pk}/change/", _firm_form(firm, max_gross_exposure=str(new))
    )
    assert response.status_code == 302
    assert RiskLimits.objects.get(pk=firm.pk).max_gross_exposure == new
    assert not PendingChange.objects.exists()


@override_settings(FOUR_EYES_LIMIT_RAISE_PCT=20)
def test_pending_page_when_requester_then_no_decision_and_post_refused(managers: tuple[Any, Any]) -> None:
    risk1, risk2 = managers
    _client(risk1).post("/admin/risk/risklimits/scopes/desk:EQ/", {"max_order_value": "5000", "reason": "new"})
    change = PendingChange.objects.get()
    page = _client(risk1).get(PENDING)
    assert page.status_code == 200 and "another risk manager must decide it" in page.content.decode()
    body = {"change_id": str(change.change_id), "decision": "approve", "reason": "mine", "confirm": "yes"}
    refused = _client(risk1).post(PENDING, body)
    assert refused.status_code == 302 and PendingChange.objects.get().status == "PENDING"
    assert any("requester" in m for m in _messages(refused))
    # risk2: no reason, the form is shown again with its error; then approved after the confirmation step
    missing = _client(risk2).post(PENDING, {**body, "reason": "  "})
    assert missing.status_code == 200 and "A reason is required" in missing.content.decode()
    review = _client(risk2).post(PENDING, {**body, "confirm": ""})
    assert review.status_code == 200 and 'id="approval-confirm"' in review.content.decode()
    assert PendingChange.objects.get().status == "PENDING"
    done = _client(risk2).post(PENDING, body)
    assert done.status_code == 302 and PendingChange.objects.get().status == "APPROVED"
    assert RiskLimits.objects.get(scope="DESK", scope_key="EQ").max_order_value == 5000


def test_pending_page_when_trader_then_refused(trader: Any) -> None:
    assert _client(trader).get(PENDING).status_code in (302, 403)
