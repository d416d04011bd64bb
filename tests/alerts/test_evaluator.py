"""The evaluator over the real trail: each rule fires on its cause (through the API where one exists), not below
its threshold, and an alert is not repeated while unacknowledged."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from alerts.models import Alert, AlertRule
from alerts.services import Evaluator
from audit.models import Event, EventType
from risk.models import Position
from tests.alerts.conftest import kinds
from tests.support.market import price

pytestmark = pytest.mark.django_db


def test_trading_state_halt_by_api_then_one_critical_alert_with_its_cause(risk_manager, client_for, evaluator) -> None:
    response = client_for(risk_manager).post(
        "/api/v1/risk/trading-state", {"scope": "firm", "state": "HALTED", "reason": "drill"}, format="json"
    )
    assert response.status_code == 200, response.content
    raised = evaluator.run_events()
    assert [(a.kind, a.scope, a.severity) for a in raised] == [("TRADING_STATE", "firm", "CRITICAL")]
    cause = Event.objects.get(event_id=raised[0].cause_event_id)
    assert cause.event_type == EventType.TRADING_STATE_CHANGED
    assert Event.objects.filter(event_type=EventType.ALERT_RAISED, payload__alert_id=str(raised[0].alert_id)).exists()


def test_dedup_when_unacknowledged_then_not_repeated_and_after_ack_a_new_cause_alerts(
    risk_manager, client_for, evaluator, cause
) -> None:
    for _ in range(2):
        cause("CIRCUIT_BREAKER_OPENED", {"from": "CLOSED", "to": "OPEN", "failures": 5})
    assert len(evaluator.run_events()) == 1
    cause("CIRCUIT_BREAKER_OPENED", {"failures": 5})
    assert evaluator.run_events() == []
    alert = Alert.objects.get()
    ack = client_for(risk_manager).post(f"/api/v1/alerts/{alert.alert_id}/ack", {"note": "venue called"}, format="json")
    assert ack.status_code == 200
    cause("CIRCUIT_BREAKER_OPENED", {"failures": 5})
    assert len(evaluator.run_events()) == 1


def test_rejection_burst_from_real_rejected_orders_per_trader_and_scope(trader, client_for, evaluator) -> None:
    AlertRule.objects.filter(kind="REJECTION_BURST").update(count=3, window_seconds=60)
    price("AAPL", 100)
    client = client_for(trader)

    def reject(n: int) -> None:
        order = {"symbol": "AAPL", "side": "BUY", "quantity": 110000, "price": 100, "client_order_id": f"c-{n}"}
        assert client.post("/api/v1/orders", order, format="json").json()["status"] == "REJECTED"

    reject(1)
    reject(2)
    assert evaluator.run_events() == []  # two: below the threshold
    reject(3)
    evaluator.run_events()
    scopes = {scope for kind, scope in kinds() if kind == "REJECTION_BURST"}
    assert f"user:{trader.username}" in scopes and "firm" in scopes


def test_login_failure_burst_through_the_login_endpoint(trader, evaluator) -> None:
    AlertRule.objects.filter(kind="LOGIN_FAILURE_BURST").update(count=3, window_seconds=60)
    api = APIClient()
    for _ in range(2):
        assert (
            api.post(
                "/api/v1/auth/login", {"username": trader.username, "password": "wrong"}, format="json"
            ).status_code
            == 401
        )
    assert evaluator.run_events() == []
    api.post("/api/v1/auth/login", {"username": trader.username, "password": "wrong"}, format="json")
    evaluator.run_events()
    assert ("LOGIN_FAILURE_BURST", f"user:{trader.username}") in kinds()


def test_audit_verification_failure_and_var_breach_and_breaker(evaluator, cause) -> None:
    cause("AUDIT_VERIFIED", {"ok": True})
    assert evaluator.run_events() == []
    cause("AUDIT_VERIFIED", {"ok": False, "first_bad_sequence": 7, "kind": "content", "detail": "hash differs"})
    cause("CIRCUIT_BREAKER_OPENED", {"failures": 5})
    evaluator.run_events()
    assert kinds() == [("AUDIT_VERIFICATION", "audit"), ("CIRCUIT_BREAKER", "venue:default")]


def test_var_rule_is_keyed_on_the_event_type_name(evaluator) -> None:
    rule = AlertRule.objects.get(kind="VAR_BREACH")
    assert rule.event_type == "VAR_LIMIT_BREACHED" and rule.enabled


def test_limit_usage_check_fires_at_80_not_below(risk_manager, client_for, evaluator) -> None:
    client = client_for(risk_manager)
    price("AAPL", 100)
    Position.objects.create(scope="firm", symbol="AAPL", quantity=Decimal(790), average_price=Decimal(100))
    response = client.patch("/api/v1/risk/limits", {"max_gross_exposure": 100000, "reason": "test"}, format="json")
    assert response.status_code == 200, response.content
    assert [a for a in evaluator.run_checks() if a.kind == "LIMIT_USAGE"] == []  # 79 %
    Position.objects.filter(scope="firm", symbol="AAPL").update(quantity=Decimal(810))
    found = [a for a in evaluator.run_checks() if a.kind == "LIMIT_USAGE"]
    assert [(a.scope, a.severity) for a in found] == [("firm", "WARNING")]
    assert "max_gross_exposure of firm at 81.0%" in found[0].message
    assert [a for a in evaluator.run_checks() if a.kind == "LIMIT_USAGE"] == []  # same level: not repeated


def test_stale_market_data_check_for_held_symbols(evaluator) -> None:
    import datetime as dt

    from django.utils import timezone

    price("AAPL", 100)
    Position.objects.create(scope="firm", symbol="AAPL", quantity=Decimal(1), average_price=Decimal(100))
    now = timezone.now()
    later = [a for a in evaluator.run_checks(now + dt.timedelta(seconds=30)) if a.kind == "STALE_MARKET_DATA"]
    assert later == []  # 30 s old: under the rule's 60 s
    found = [a for a in evaluator.run_checks(now + dt.timedelta(seconds=120)) if a.kind == "STALE_MARKET_DATA"]
    assert [a.scope for a in found] == ["symbol:AAPL"]


def test_disabled_rule_does_not_fire(evaluator, cause) -> None:
    AlertRule.objects.filter(kind="CIRCUIT_BREAKER").update(enabled=False)
    cause("CIRCUIT_BREAKER_OPENED", {"failures": 5})
    assert evaluator.run_events() == []


def test_burst_straddling_an_evaluator_restart_still_fires(evaluator, cause) -> None:
    AlertRule.objects.filter(kind="LOGIN_FAILURE_BURST").update(count=3, window_seconds=60)
    cause("LOGIN_FAILED", {"username": "mallory"})
    cause("LOGIN_FAILED", {"username": "mallory"})
    assert evaluator.run_events() == []
    restarted = Evaluator()  # a new process: empty windows, the cursor kept in the database
    cause("LOGIN_FAILED", {"username": "mallory"})
    assert [(a.kind, a.scope) for a in restarted.run_events()] == [("LOGIN_FAILURE_BURST", "user:mallory")]
