"""The VaR limit (max_var): set beside the other limits, never checked per order, measured by the scheduled run
that moves a scope over it to REDUCING with a VAR_LIMIT_BREACHED event and keeps each run's figures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings

from analytics.models import VarSnapshot
from analytics.services import var_limits_check
from audit.models import Event, EventType
from risk.models import RiskLimits, RiskState, ScopeState, TradingState
from risk.store import CHECKED_LIMITS
from tests.support.analytics import random_walk

pytestmark = pytest.mark.django_db


@pytest.fixture
def aapl(hold: Any, history: Any) -> None:
    history("AAPL", random_walk(148.0, 0.02, 501, seed=4))
    hold("AAPL", 1000, "148")  # 148,000 USD; 99 % one-day VaR some 6,000-8,000


def _limit(scope: str, key: str, max_var: str) -> None:
    RiskLimits.objects.update_or_create(scope=scope, scope_key=key, defaults={"max_var": Decimal(max_var)})


def test_scope_over_its_var_limit_moves_to_reducing_with_its_event(aapl: None) -> None:
    _limit("BOOK", "MAIN", "1000")
    _limit("DESK", "EQ", "1000000")  # far above: stays ACTIVE
    snapshots = var_limits_check()
    by_scope = {s.scope: s for s in snapshots}
    assert set(by_scope) == {"firm", "book:MAIN", "desk:EQ"}
    assert by_scope["book:MAIN"].breached and by_scope["book:MAIN"].var > 1000
    assert not by_scope["desk:EQ"].breached and by_scope["firm"].max_var is None
    assert ScopeState.objects.get(scope="book:MAIN").trading_state == TradingState.REDUCING
    assert not ScopeState.objects.filter(scope="desk:EQ").exclude(trading_state=TradingState.ACTIVE).exists()
    (breach,) = Event.objects.filter(event_type=EventType.VAR_LIMIT_BREACHED)
    assert breach.payload["scope"] == "book:MAIN" and Decimal(breach.payload["max_var"]) == 1000
    assert Decimal(breach.payload["var"]) == by_scope["book:MAIN"].var
    (state_event,) = Event.objects.filter(event_type=EventType.TRADING_STATE_CHANGED)
    assert state_event.payload["scope"] == "book:MAIN" and state_event.payload["state"] == "REDUCING"
    assert state_event.payload["previous"] == "ACTIVE" and "max_var" in state_event.payload["reason"]
    # The next run measures again but records no second breach: the scope is already REDUCING.
    var_limits_check()
    assert Event.objects.filter(event_type=EventType.VAR_LIMIT_BREACHED).count() == 1
    assert VarSnapshot.objects.filter(scope="book:MAIN").count() == 2


def test_firm_over_its_var_limit_is_reducing_not_halted(aapl: None) -> None:
    _limit("FIRM", "", "10")
    var_limits_check()
    firm = RiskState.objects.get()
    assert firm.trading_state == TradingState.REDUCING and not firm.kill_switch_enabled


def test_scope_under_its_limit_or_without_positions_stays_active(aapl: None) -> None:
    _limit("SYMBOL", "MSFT", "1")  # no MSFT held: VaR 0
    (firm, msft) = var_limits_check()
    assert msft.scope == "symbol:MSFT" and msft.var == 0 and not msft.breached
    assert not Event.objects.filter(event_type=EventType.VAR_LIMIT_BREACHED).exists()
    assert not ScopeState.objects.exclude(trading_state=TradingState.ACTIVE).exists()


def test_scheduled_run_when_no_instrument_has_daily_history_then_figures_with_no_observations(hold: Any) -> None:
    # A fresh platform: instruments listed and held, no daily bar loaded yet. The run's shared history was
    # 0 days x n instruments, and picking the firm's two instruments from it raised IndexError: the firm's
    # VaR went unmeasured at every run, with an error line each minute.
    hold("AAPL", 10, "148")
    hold("MSFT", 5, "295")
    (firm,) = var_limits_check()
    assert firm.scope == "firm" and firm.observations == 0 and firm.var == 0 and not firm.breached


def test_max_var_is_not_a_per_order_check() -> None:
    assert "max_var" not in CHECKED_LIMITS


def test_limits_api_sets_and_clears_max_var(risk_manager: Any, client_for: Any) -> None:
    client = client_for(risk_manager)
    response = client.patch("/api/v1/risk/limits/firm", {"max_var": "250000", "reason": "VaR budget"}, format="json")
    assert response.status_code == 200, response.content
    assert Decimal(str(response.json()["max_var"])) == 250000
    (event,) = Event.objects.filter(event_type=EventType.LIMITS_CHANGED)
    assert Decimal(event.payload["new"]["max_var"]) == 250000
    assert client.patch("/api/v1/risk/limits/firm", {"max_var": "-5", "reason": "x"}, format="json").status_code == 400
    response = client.patch("/api/v1/risk/limits/firm", {"max_var": None, "reason": "off"}, format="json")
    assert response.status_code == 200 and response.json()["max_var"] is None


def test_beat_schedules_the_run_every_minute_by_default() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["analytics-var-limits"]
    assert entry["task"] == "analytics.var_limits_check" and entry["schedule"] == 60.0
