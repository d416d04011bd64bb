"""Four-eyes over the API (API.md Governance): limit raises over FOUR_EYES_LIMIT_RAISE_PCT and releases of
HALTED wait for a second risk manager with rights on the scope; the requester cannot decide; each step an event;
bad input a clear 4xx with nothing written; the policy off leaves v1 as it was."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from approvals.models import PendingChange
from approvals.services import changes_expire
from audit.models import Event, EventType
from books.models import Desk
from books.services import grant_add
from risk.models import RiskLimits, RiskState, ScopeState

pytestmark = pytest.mark.django_db

LIMITS = "/api/v1/risk/limits"
KILL = "/api/v1/risk/kill-switch"
STATE = "/api/v1/risk/trading-state"
FOUR_EYES = override_settings(FOUR_EYES_LIMIT_RAISE_PCT=20, FOUR_EYES_RELEASE_HALT=True)


@pytest.fixture
def risk2(make_user: Any) -> Any:
    return make_user("risk2", "RISK_MANAGER")


@pytest.fixture
def desk_managers(risk_manager: Any, risk2: Any) -> tuple[Any, Any]:
    """risk1 and risk2, both granted desk EQ to manage."""
    for user in (risk_manager, risk2):
        grant_add(actor=None, obj=Desk.objects.get(code="EQ"), user=user, permission="manage")
    return risk_manager, risk2


def _firm() -> RiskLimits:
    return RiskLimits.objects.get(scope="FIRM", scope_key="")


def _events(kind: EventType) -> list[Event]:
    return list(Event.objects.filter(event_type=kind).order_by("sequence"))


def _raise_gross(client: Any, factor: str) -> Any:
    new = (_firm().max_gross_exposure * Decimal(factor)).quantize(Decimal("0.01"))
    return client.patch(LIMITS, {"max_gross_exposure": str(new), "reason": "more room"}, format="json"), new


def test_limit_raise_when_policy_off_then_applied_at_once_as_v1(risk_manager: Any, client_for: Any) -> None:
    response, new = _raise_gross(client_for(risk_manager), "10")
    assert response.status_code == 200, response.content
    assert _firm().max_gross_exposure == new
    assert not PendingChange.objects.exists() and not _events(EventType.CHANGE_REQUESTED)


@FOUR_EYES
def test_limit_raise_when_over_threshold_then_202_limits_unchanged_pending_row_and_event(
    risk_manager: Any, client_for: Any
) -> None:
    before = _firm().max_gross_exposure
    changes_before = len(_events(EventType.LIMITS_CHANGED))
    response, new = _raise_gross(client_for(risk_manager), "1.5")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "PENDING_APPROVAL" and set(body) == {"change_id", "status"}
    assert _firm().max_gross_exposure == before
    assert len(_events(EventType.LIMITS_CHANGED)) == changes_before
    change = PendingChange.objects.get(pk=body["change_id"])
    assert (change.kind, change.scope, change.status, change.requested_by) == (
        "LIMIT_RAISE",
        "firm",
        "PENDING",
        risk_manager,
    )
    assert Decimal(change.change["limits"]["max_gross_exposure"]) == new
    assert change.change["raised"] == ["max_gross_exposure"]
    [requested] = _events(EventType.CHANGE_REQUESTED)
    assert requested.payload["change_id"] == body["change_id"] and requested.actor_id == risk_manager.pk


@FOUR_EYES
def test_limit_raise_when_under_threshold_or_lowered_then_applied_at_once(risk_manager: Any, client_for: Any) -> None:
    client = client_for(risk_manager)
    response, new = _raise_gross(client, "1.1")
    assert response.status_code == 200, response.content
    assert _firm().max_gross_exposure == new
    response, new = _raise_gross(client, "0.5")
    assert response.status_code == 200 and _firm().max_gross_exposure == new
    assert not PendingChange.objects.exists()


@FOUR_EYES
def test_approve_when_second_risk_manager_then_applied_and_events_name_both(
    risk_manager: Any, risk2: Any, client_for: Any
) -> None:
    response, new = _raise_gross(client_for(risk_manager), "2")
    change_id = response.json()["change_id"]
    listed = client_for(risk2).get("/api/v1/approvals?status=PENDING").json()
    assert listed["total"] == 1
    item = listed["approvals"][0]
    assert {k: item[k] for k in ("change_id", "kind", "scope", "requested_by", "status", "reason")} == {
        "change_id": change_id,
        "kind": "LIMIT_RAISE",
        "scope": "firm",
        "requested_by": "risk1",
        "status": "PENDING",
        "reason": "more room",
    }
    approved = client_for(risk2).post(f"/api/v1/approvals/{change_id}/approve", {"reason": "checked"}, format="json")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "APPROVED" and approved.json()["decided_by"] == "risk2"
    assert _firm().max_gross_exposure == new
    limits_event = _events(EventType.LIMITS_CHANGED)[-1]
    assert limits_event.payload["requested_by"] == "risk1" and limits_event.payload["approved_by"] == "risk2"
    assert limits_event.payload["change_id"] == change_id and limits_event.payload["reason"] == "more room"
    [decision] = _events(EventType.CHANGE_APPROVED)
    assert decision.actor_id == risk2.pk and decision.payload["decision_reason"] == "checked"
    assert decision.sequence > limits_event.sequence
    assert client_for(risk2).get("/api/v1/approvals?status=PENDING").json()["total"] == 0


@FOUR_EYES
def test_approve_when_requester_then_403_and_nothing_changes(risk_manager: Any, client_for: Any) -> None:
    client = client_for(risk_manager)
    response, _ = _raise_gross(client, "2")
    change_id = response.json()["change_id"]
    before = _firm().max_gross_exposure
    for action in ("approve", "reject"):
        refused = client.post(f"/api/v1/approvals/{change_id}/{action}", {"reason": "mine"}, format="json")
        assert refused.status_code == 403, refused.content
    assert _firm().max_gross_exposure == before
    assert PendingChange.objects.get(pk=change_id).status == "PENDING"
    assert not _events(EventType.CHANGE_APPROVED) and not _events(EventType.CHANGE_REJECTED)


@FOUR_EYES
def test_reject_when_reason_given_then_rejected_nothing_applied_event(
    risk_manager: Any, risk2: Any, client_for: Any
) -> None:
    response, _ = _raise_gross(client_for(risk_manager), "2")
    change_id = response.json()["change_id"]
    before = _firm().max_gross_exposure
    rejected = client_for(risk2).post(f"/api/v1/approvals/{change_id}/reject", {"reason": "too much"}, format="json")
    assert rejected.status_code == 200, rejected.content
    assert rejected.json()["status"] == "REJECTED" and rejected.json()["decision_reason"] == "too much"
    assert _firm().max_gross_exposure == before
    [event] = _events(EventType.CHANGE_REJECTED)
    assert event.payload["decided_by"] == "risk2" and event.payload["requested_by"] == "risk1"


@FOUR_EYES
def test_decide_when_bad_input_then_400_404_409_and_nothing_written(
    risk_manager: Any, risk2: Any, client_for: Any
) -> None:
    response, _ = _raise_gross(client_for(risk_manager), "2")
    change_id = response.json()["change_id"]
    client = client_for(risk2)
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        refused = client.post(f"/api/v1/approvals/{change_id}/approve", body, format="json")
        assert refused.status_code == 400, refused.content
    assert PendingChange.objects.get(pk=change_id).status == "PENDING"
    for unknown in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        missing = client.post(f"/api/v1/approvals/{unknown}/approve", {"reason": "x"}, format="json")
        assert missing.status_code == 404, missing.content
    assert client.post(f"/api/v1/approvals/{change_id}/reject", {"reason": "no"}, format="json").status_code == 200
    events = Event.objects.count()
    for action in ("approve", "reject"):
        twice = client.post(f"/api/v1/approvals/{change_id}/{action}", {"reason": "again"}, format="json")
        assert twice.status_code == 409, twice.content
    assert Event.objects.count() == events


@FOUR_EYES
def test_pending_change_when_past_expiry_then_expired_by_task_and_lazily_at_decision(
    risk_manager: Any, risk2: Any, client_for: Any
) -> None:
    first = _raise_gross(client_for(risk_manager), "2")[0].json()["change_id"]
    second = _raise_gross(client_for(risk_manager), "3")[0].json()["change_id"]
    PendingChange.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    # lazily: deciding an expired change answers 409 and keeps its expiry
    late = client_for(risk2).post(f"/api/v1/approvals/{first}/approve", {"reason": "late"}, format="json")
    assert late.status_code == 409, late.content
    assert PendingChange.objects.get(pk=first).status == "EXPIRED"
    # the beat task closes the rest
    assert changes_expire() == 1
    assert PendingChange.objects.get(pk=second).status == "EXPIRED"
    assert len(_events(EventType.CHANGE_EXPIRED)) == 2
    assert not _events(EventType.CHANGE_APPROVED)


@FOUR_EYES
def test_desk_release_of_halted_waits_while_halting_never_waits(
    desk_managers: tuple[Any, Any], client_for: Any
) -> None:
    risk1, risk2 = desk_managers
    halt = client_for(risk1).post(STATE, {"scope": "desk:EQ", "state": "HALTED", "reason": "drill"}, format="json")
    assert halt.status_code == 200, halt.content
    release = client_for(risk1).post(STATE, {"scope": "desk:EQ", "state": "ACTIVE", "reason": "ok"}, format="json")
    assert release.status_code == 202, release.content
    assert ScopeState.objects.get(scope="desk:EQ").trading_state == "HALTED"
    change_id = release.json()["change_id"]
    approved = client_for(risk2).post(f"/api/v1/approvals/{change_id}/approve", {"reason": "fine"}, format="json")
    assert approved.status_code == 200, approved.content
    assert ScopeState.objects.get(scope="desk:EQ").trading_state == "ACTIVE"
    event = _events(EventType.TRADING_STATE_CHANGED)[-1]
    assert (event.payload["scope"], event.payload["state"], event.payload["previous"]) == (
        "desk:EQ",
        "ACTIVE",
        "HALTED",
    )
    assert event.payload["requested_by"] == "risk1" and event.payload["approved_by"] == "risk2"


@FOUR_EYES
def test_desk_change_when_approver_has_no_rights_on_scope_then_403_and_not_listed(
    desk_managers: tuple[Any, Any], make_user: Any, client_for: Any
) -> None:
    risk1, _ = desk_managers
    outsider = make_user("risk3", "RISK_MANAGER")
    client_for(risk1).post(STATE, {"scope": "desk:EQ", "state": "HALTED", "reason": "drill"}, format="json")
    change_id = client_for(risk1).post(STATE, {"scope": "desk:EQ", "state": "ACTIVE", "reason": "ok"}, format="json")
    change_id = change_id.json()["change_id"]
    assert client_for(outsider).get("/api/v1/approvals").json()["total"] == 0
    refused = client_for(outsider).post(f"/api/v1/approvals/{change_id}/approve", {"reason": "x"}, format="json")
    assert refused.status_code == 403
    assert ScopeState.objects.get(scope="desk:EQ").trading_state == "HALTED"


@FOUR_EYES
def test_firm_kill_switch_release_waits_by_v1_calls_and_approval_deactivates(
    risk_manager: Any, risk2: Any, client_for: Any
) -> None:
    client = client_for(risk_manager)
    assert client.post(KILL, {"enabled": True, "reason": "drill"}, format="json").status_code == 200
    off = client.post(KILL, {"enabled": False, "reason": "over"}, format="json")
    assert off.status_code == 202 and off.json()["status"] == "PENDING_APPROVAL"
    via_limits = client.patch(LIMITS, {"kill_switch_enabled": False, "reason": "over"}, format="json")
    assert via_limits.status_code == 202, via_limits.content
    assert RiskState.objects.get().kill_switch_enabled is True
    assert not _events(EventType.KILL_SWITCH_DEACTIVATED)
    approved = client_for(risk2).post(
        f"/api/v1/approvals/{off.json()['change_id']}/approve", {"reason": "drill over"}, format="json"
    )
    assert approved.status_code == 200, approved.content
    state = RiskState.objects.get()
    assert state.kill_switch_enabled is False and state.trading_state == "ACTIVE"
    [deactivated] = _events(EventType.KILL_SWITCH_DEACTIVATED)
    assert deactivated.payload["requested_by"] == "risk1" and deactivated.payload["approved_by"] == "risk2"
    assert deactivated.actor_id == risk2.pk


@FOUR_EYES
def test_kill_switch_release_with_limit_changes_together_then_409_and_nothing_kept(
    risk_manager: Any, client_for: Any
) -> None:
    client = client_for(risk_manager)
    client.post(KILL, {"enabled": True, "reason": "drill"}, format="json")
    body = {"kill_switch_enabled": False, "max_gross_exposure": "1000", "reason": "both"}
    response = client.patch(LIMITS, body, format="json")
    assert response.status_code == 409, response.content
    assert not PendingChange.objects.exists() and RiskState.objects.get().kill_switch_enabled is True


@FOUR_EYES
def test_scope_limit_set_where_none_was_counts_as_raise_and_clearing_too(
    desk_managers: tuple[Any, Any], client_for: Any
) -> None:
    risk1, risk2 = desk_managers
    first = client_for(risk1).patch(
        "/api/v1/risk/limits/desk:EQ", {"max_order_value": "1000", "reason": "new"}, format="json"
    )
    assert first.status_code == 202, first.content
    assert not RiskLimits.objects.filter(scope="DESK", scope_key="EQ").exists()
    change_id = first.json()["change_id"]
    assert (
        client_for(risk2).post(f"/api/v1/approvals/{change_id}/approve", {"reason": "ok"}, format="json").status_code
        == 200
    )
    assert RiskLimits.objects.get(scope="DESK", scope_key="EQ").max_order_value == Decimal("1000")
    lower = client_for(risk1).patch(
        "/api/v1/risk/limits/desk:EQ", {"max_order_value": "500", "reason": "tighter"}, format="json"
    )
    assert lower.status_code == 200
    cleared = client_for(risk1).patch(
        "/api/v1/risk/limits/desk:EQ", {"max_order_value": None, "reason": "drop"}, format="json"
    )
    assert cleared.status_code == 202
    assert RiskLimits.objects.get(scope="DESK", scope_key="EQ").max_order_value == Decimal("500")


def test_approvals_list_when_trader_then_403_and_compliance_sees_all(
    trader: Any, compliance: Any, client_for: Any
) -> None:
    assert client_for(trader).get("/api/v1/approvals").status_code == 403
    answer = client_for(compliance).get("/api/v1/approvals?status=PENDING")
    assert answer.status_code == 200 and answer.json() == {"approvals": [], "total": 0}
    assert client_for(compliance).get("/api/v1/approvals?status=NOPE").status_code == 400
