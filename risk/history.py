"""A scope's history of limit and trading-state changes, read from the audit trail (the events are the record:
LIMITS_CHANGED, TRADING_STATE_CHANGED and, for the firm, v1's KILL_SWITCH_ACTIVATED / _DEACTIVATED)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from audit.models import Event, EventType
from risk.scopes import FIRM, Scope

KILL_SWITCH_TYPES = [EventType.KILL_SWITCH_ACTIVATED, EventType.KILL_SWITCH_DEACTIVATED]
# Limits counted in units or percent, not money (every other limit is money in the reporting currency).
NOT_MONEY = {"max_order_quantity": "quantity", "price_collar_pct": "percent"}
LABELS = {
    "max_order_quantity": "Max order quantity",
    "max_order_value": "Max order value",
    "max_position_size": "Max position size",
    "max_daily_volume": "Max daily volume",
    "max_net_exposure": "Max net exposure",
    "max_gross_exposure": "Max gross exposure",
    "max_daily_loss": "Max daily loss",
    "price_collar_pct": "Price collar (%)",
}


def scope_filter(scope: Scope) -> Q:
    """The events that concern a scope (by the "scope" of their payload)."""
    mine = Q(payload__scope=str(scope))
    if scope == FIRM:
        # v1's events (before scopes existed) name no scope: they were the firm's.
        mine |= ~Q(payload__has_key="scope")
    return mine


def _limit_changes(payload: dict[str, Any]) -> list[dict[str, Any]]:
    changed = payload.get("changed")
    if not isinstance(changed, dict):  # an event written before "changed" existed: compare old and new
        old, new = payload.get("old") or {}, payload.get("new") or {}
        changed = {n: {"old": old.get(n), "new": new.get(n)} for n in new if old.get(n) != new.get(n)}
    return [
        {
            "name": name,
            "label": LABELS.get(name, name),
            "old": values.get("old"),
            "new": values.get("new"),
            "kind": NOT_MONEY.get(name, "money"),
        }
        for name, values in changed.items()
        if isinstance(values, dict)
    ]


def scope_history(scope: Scope, *, limit: int = 500) -> list[dict[str, Any]]:
    """The newest `limit` changes of a scope's limits and trading state: when, who, old -> new, why."""
    kinds = Q(event_type=EventType.LIMITS_CHANGED) | Q(event_type=EventType.TRADING_STATE_CHANGED)
    if scope == FIRM:
        kinds |= Q(event_type__in=KILL_SWITCH_TYPES)
    events = list(
        Event.objects.filter(kinds)
        .filter(scope_filter(scope) | Q(event_type__in=KILL_SWITCH_TYPES))
        .order_by("-sequence")[:limit]
    )
    # Since scopes exist a kill-switch toggle writes TRADING_STATE_CHANGED for the firm too: show it once.
    with_state = {e.correlation_id for e in events if e.event_type == EventType.TRADING_STATE_CHANGED}
    rows: list[dict[str, Any]] = []
    for e in events:
        p = e.payload if isinstance(e.payload, dict) else {}
        row = {
            "sequence": e.sequence,
            "when": e.timestamp,
            "who": e.actor_username or "system",
            "reason": p.get("reason") or "none given",
            "event_type": e.event_type,
        }
        if e.event_type == EventType.LIMITS_CHANGED:
            row.update(what="Limits", changes=_limit_changes(p))
        elif e.event_type == EventType.TRADING_STATE_CHANGED:
            row.update(what="Trading state", changes=[_state_change(p.get("previous"), p.get("state"))])
        else:
            if e.correlation_id in with_state:
                continue
            was, now = p.get("was_enabled"), e.event_type == EventType.KILL_SWITCH_ACTIVATED
            row.update(
                what="Kill switch",
                changes=[_state_change(None if was is None else "HALTED" if was else "ACTIVE", _halted(now))],
            )
        rows.append(row)
    return rows


def _halted(on: bool) -> str:
    return "HALTED" if on else "ACTIVE"


def _state_change(old: Any, new: Any) -> dict[str, Any]:
    return {"name": "trading_state", "label": "Trading state", "old": old, "new": new, "kind": "state"}
