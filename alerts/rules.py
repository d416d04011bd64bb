"""The rules, pure: an audit event (or a periodic reading) and the enabled rules in, candidate alerts out.

No Django import and no I/O: the evaluator (alerts.services) reads events and measures, and writes the alerts.
Bursts count in sliding windows held by the evaluator (`Windows`), keyed per trader, per scope or per username.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    kind: str
    event_type: str
    severity: str
    threshold: Decimal | None = None
    count: int | None = None
    window_seconds: int | None = None


@dataclass(frozen=True)
class Cause:
    """An audit event as the rules see it."""

    event_id: str
    event_type: str
    timestamp: dt.datetime
    actor_username: str = ""
    symbol: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    rule_id: int
    kind: str
    severity: str
    scope: str
    message: str
    dedup_key: str
    cause_event_id: str | None = None
    cause_timestamp: dt.datetime | None = None


class Windows:
    """Sliding windows of cause times, one deque per (rule, key)."""

    def __init__(self) -> None:
        self._times: dict[tuple[int, str], deque[dt.datetime]] = defaultdict(deque)

    def add(self, rule: Rule, key: str, at: dt.datetime) -> int:
        """Count one cause at `at`; answer how many fall inside the rule's window ending at `at`."""
        times = self._times[(rule.id, key)]
        times.append(at)
        start = at - dt.timedelta(seconds=rule.window_seconds or 0)
        while times and times[0] <= start:
            times.popleft()
        return len(times)

    def clear(self, rule: Rule, key: str) -> None:
        self._times.pop((rule.id, key), None)


def _candidate(rule: Rule, cause: Cause, scope: str, message: str, key: str, severity: str = "") -> Candidate:
    return Candidate(
        rule_id=rule.id,
        kind=rule.kind,
        severity=severity or rule.severity,
        scope=scope,
        message=message,
        dedup_key=f"{rule.kind}|{key}",
        cause_event_id=cause.event_id,
        cause_timestamp=cause.timestamp,
    )


def _burst(rule: Rule, cause: Cause, windows: Windows, scope: str, what: str) -> list[Candidate]:
    if not rule.count or not rule.window_seconds:
        return []
    seen = windows.add(rule, scope, cause.timestamp)
    if seen < rule.count:
        return []
    windows.clear(rule, scope)  # the next alert needs a new burst, not the next single cause
    message = f"{seen} {what} on {scope} within {rule.window_seconds} s"
    return [_candidate(rule, cause, scope, message, scope)]


def _scopes_of(cause: Cause) -> list[str]:
    return sorted({str(v.get("scope")) for v in cause.payload.get("violations") or [] if v.get("scope")})


def on_event(rules: Iterable[Rule], cause: Cause, windows: Windows) -> list[Candidate]:
    """The alerts one audit event raises under the enabled rules."""
    found: list[Candidate] = []
    for rule in rules:
        if rule.event_type and rule.event_type != cause.event_type and rule.kind != "LOGIN_FAILURE_BURST":
            continue
        found += _one(rule, cause, windows)
    return found


def _one(rule: Rule, cause: Cause, windows: Windows) -> list[Candidate]:  # noqa: PLR0911 - one branch per kind
    p = cause.payload
    if rule.kind == "REJECTION_BURST":
        found = []
        if cause.actor_username:
            found += _burst(rule, cause, windows, f"user:{cause.actor_username}", "rejected orders")
        for scope in _scopes_of(cause):
            found += _burst(rule, cause, windows, scope, "rejected orders")
        return found
    if rule.kind == "TRADING_STATE":
        scope, state = str(p.get("scope", "firm")), str(p.get("state", ""))
        who = f" by {cause.actor_username}" if cause.actor_username else ""
        message = f"Trading state of {scope}: {p.get('previous', '?')} → {state}{who}. Reason: {p.get('reason', '')}"
        severity = rule.severity if state == "HALTED" else "WARNING"
        return [_candidate(rule, cause, scope, message[:1000], f"{scope}|{state}", severity)]
    if rule.kind == "CIRCUIT_BREAKER":
        scope = f"venue:{p.get('venue') or 'default'}"
        message = f"Circuit breaker opened after {p.get('failures', '?')} failures; open until {p.get('open_until')}"
        return [_candidate(rule, cause, scope, message, scope)]
    if rule.kind == "VAR_BREACH":
        scope = str(p.get("scope") or "firm")
        var, limit = p.get("var") or p.get("projected"), p.get("limit")
        message = f"VaR limit breached on {scope}" + (f": VaR {var} > limit {limit}" if var and limit else "")
        return [_candidate(rule, cause, scope, message, scope)]
    if rule.kind == "AUDIT_VERIFICATION":
        if p.get("ok", True) is not False:
            return []
        message = (
            f"Audit trail verification failed at #{p.get('first_bad_sequence')}: {p.get('kind')} {p.get('detail')}"
        )
        return [_candidate(rule, cause, "audit", message[:1000], "audit")]
    if rule.kind == "LOGIN_FAILURE_BURST":
        username = str(p.get("username") or cause.actor_username or "?")
        scope = f"user:{username}"
        if cause.event_type == "LOGIN_LOCKED_OUT":
            windows.clear(rule, scope)
            return [_candidate(rule, cause, scope, f"Username {username} locked out after failed logins", scope)]
        if cause.event_type != (rule.event_type or "LOGIN_FAILED"):
            return []
        return _burst(rule, cause, windows, scope, "failed logins")
    if rule.kind == "STALE_MARKET_DATA":
        found = []
        for v in p.get("violations") or []:
            if v.get("code") == "STALE_MARKET_DATA":
                scope = f"symbol:{cause.symbol}" if cause.symbol else str(v.get("scope"))
                message = f"Order refused on stale market data for {cause.symbol or scope}"
                found.append(_candidate(rule, cause, scope, message, scope))
        return found
    return []


@dataclass(frozen=True)
class Usage:
    """One measure of one scope: what it uses against its limit."""

    scope: str
    measure: str
    used: Decimal
    limit: Decimal


def on_usage(rules: Iterable[Rule], usages: Iterable[Usage], now: dt.datetime) -> list[Candidate]:
    """Limit usage: for each measure, the highest level reached (one alert, not three at once)."""
    levels = sorted((r for r in rules if r.kind == "LIMIT_USAGE" and r.threshold is not None), key=_threshold)
    found = []
    for u in usages:
        if u.limit <= 0:
            continue
        pct = u.used / u.limit * 100
        reached = [r for r in levels if pct >= _threshold(r)]
        if not reached:
            continue
        rule = reached[-1]
        message = f"{u.measure} of {u.scope} at {pct:.1f}% of its limit ({u.used:,.2f} of {u.limit:,.2f})"
        found.append(
            Candidate(
                rule_id=rule.id,
                kind=rule.kind,
                severity=rule.severity,
                scope=u.scope,
                message=message,
                dedup_key=f"{rule.kind}|{u.scope}|{u.measure}|{_threshold(rule)}",
                cause_timestamp=now,
            )
        )
    return found


def _threshold(rule: Rule) -> Decimal:
    return rule.threshold if rule.threshold is not None else Decimal(0)


def on_stale(rules: Iterable[Rule], ages: Mapping[str, float | None], now: dt.datetime) -> list[Candidate]:
    """Stale market data: a held symbol whose latest price is older than the rule's threshold (or has none)."""
    found = []
    for rule in rules:
        if rule.kind != "STALE_MARKET_DATA" or rule.threshold is None:
            continue
        for symbol, age in sorted(ages.items()):
            if age is not None and age <= rule.threshold:
                continue
            scope = f"symbol:{symbol}"
            what = "no price" if age is None else f"last price {age:.0f} s old"
            message = f"Stale market data for {symbol}: {what} (threshold {rule.threshold} s)"
            found.append(
                Candidate(
                    rule_id=rule.id,
                    kind=rule.kind,
                    severity=rule.severity,
                    scope=scope,
                    message=message,
                    dedup_key=f"{rule.kind}|{scope}",
                    cause_timestamp=now,
                )
            )
    return found
