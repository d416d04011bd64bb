"""The pure rules: each fires on its cause and not below its threshold (no database)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from alerts import rules

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def rule(kind: str, event_type: str = "", **kw: object) -> rules.Rule:
    return rules.Rule(id=hash(kind) % 1000, name=kind, kind=kind, event_type=event_type, severity="HIGH", **kw)  # type: ignore[arg-type]


def cause(event_type: str, payload: dict | None = None, at: dt.datetime = NOW, **kw: object) -> rules.Cause:
    return rules.Cause(event_id="e", event_type=event_type, timestamp=at, payload=payload or {}, **kw)  # type: ignore[arg-type]


LEVELS = [
    rules.Rule(1, "80", "LIMIT_USAGE", "", "WARNING", threshold=Decimal(80)),
    rules.Rule(2, "90", "LIMIT_USAGE", "", "HIGH", threshold=Decimal(90)),
    rules.Rule(3, "100", "LIMIT_USAGE", "", "CRITICAL", threshold=Decimal(100)),
]


@pytest.mark.parametrize(
    ("used", "severity"),
    [("79.99", None), ("80", "WARNING"), ("89.9", "WARNING"), ("90", "HIGH"), ("100", "CRITICAL"), ("150", "CRITICAL")],
)
def test_limit_usage_when_used_reaches_a_level_then_the_highest_level_reached_fires(used: str, severity: str) -> None:
    found = rules.on_usage(LEVELS, [rules.Usage("book:EQ-1", "max_gross_exposure", Decimal(used), Decimal(100))], NOW)
    assert [c.severity for c in found] == ([severity] if severity else [])
    if found:
        assert found[0].scope == "book:EQ-1" and "max_gross_exposure of book:EQ-1" in found[0].message


def test_rejection_burst_when_n_within_t_per_trader_and_per_scope_then_fires_once_each() -> None:
    r = rule("REJECTION_BURST", "RISK_CHECK_FAILED", count=3, window_seconds=10)
    w = rules.Windows()
    payload = {"violations": [{"code": "POSITION_LIMIT", "scope": "book:EQ-1"}]}
    fired = [
        rules.on_event([r], cause("RISK_CHECK_FAILED", payload, NOW + dt.timedelta(seconds=i), actor_username="t1"), w)
        for i in range(3)
    ]
    assert [len(f) for f in fired] == [0, 0, 2]
    assert sorted(c.scope for c in fired[2]) == ["book:EQ-1", "user:t1"]


def test_rejection_burst_when_spread_over_more_than_t_then_quiet() -> None:
    r = rule("REJECTION_BURST", "RISK_CHECK_FAILED", count=3, window_seconds=10)
    w = rules.Windows()
    fired = [
        rules.on_event([r], cause("RISK_CHECK_FAILED", at=NOW + dt.timedelta(seconds=6 * i), actor_username="t1"), w)
        for i in range(5)
    ]
    assert all(f == [] for f in fired)


def test_login_burst_and_lockout() -> None:
    r = rule("LOGIN_FAILURE_BURST", "LOGIN_FAILED", count=2, window_seconds=60)
    w = rules.Windows()
    assert rules.on_event([r], cause("LOGIN_FAILED", {"username": "bob"}), w) == []
    assert [c.scope for c in rules.on_event([r], cause("LOGIN_FAILED", {"username": "bob"}), w)] == ["user:bob"]
    assert [c.scope for c in rules.on_event([r], cause("LOGIN_LOCKED_OUT", {"username": "eve"}), w)] == ["user:eve"]
    assert rules.on_event([r], cause("LOGIN_SUCCEEDED", {"username": "bob"}), w) == []


def test_audit_verification_fires_only_when_not_ok() -> None:
    r = rule("AUDIT_VERIFICATION", "AUDIT_VERIFIED")
    assert rules.on_event([r], cause("AUDIT_VERIFIED", {"ok": True}), rules.Windows()) == []
    assert [c.scope for c in rules.on_event([r], cause("AUDIT_VERIFIED", {"ok": False}), rules.Windows())] == ["audit"]


def test_var_breach_keyed_on_the_event_type_name() -> None:
    r = rule("VAR_BREACH", "VAR_LIMIT_BREACHED")
    found = rules.on_event(
        [r], cause("VAR_LIMIT_BREACHED", {"scope": "desk:EQ", "var": "12", "limit": "10"}), rules.Windows()
    )
    assert [c.scope for c in found] == ["desk:EQ"]
    assert rules.on_event([r], cause("RISK_CHECK_FAILED"), rules.Windows()) == []


def test_stale_prices_over_threshold_only() -> None:
    r = rule("STALE_MARKET_DATA", "RISK_CHECK_FAILED", threshold=Decimal(60))
    found = rules.on_stale([r], {"AAPL": 59.0, "MSFT": 61.0, "NOPX": None}, NOW)
    assert [c.scope for c in found] == ["symbol:MSFT", "symbol:NOPX"]
