"""Risk use-cases that write: firm limits and the kill switch's state (each with its event, under the risk lock).

Storage of the risk state (the lock, reads for decisions, reservations, fills) is risk.store. Halting
trading also cancels open orders: that spans two domains and lives in the higher one, orders.services.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.models import Event, EventType
from audit.services import event_record
from core.exceptions import InvalidInput
from risk import store
from risk.access import scope_require
from risk.models import RiskLimits, RiskState, ScopeState, TradingState
from risk.scopes import FIRM, Scope
from risk.store import LIMIT_FIELDS


def limits_validate(values: dict[str, Any]) -> dict[str, Decimal]:
    """The one validation of limit values, used by the API and the admin form alike."""
    clean: dict[str, Decimal] = {}
    errors: dict[str, str] = {}
    for name, value in values.items():
        if name not in LIMIT_FIELDS:
            errors[name] = "Unknown limit."
            continue
        try:
            number = Decimal(str(value)) if not isinstance(value, bool) else Decimal("NaN")
        except ArithmeticError:
            number = Decimal("NaN")
        if not number.is_finite():
            errors[name] = "A valid number is required."
        elif number <= 0:
            errors[name] = "Must be a positive number."
        elif number >= Decimal("1e22") or number != number.quantize(Decimal("0.01")):
            errors[name] = "At most 22 digits before the decimal point and 2 after it."
        else:
            clean[name] = number
    if errors:
        raise InvalidInput("Invalid limits", code="invalid_limits", fields=errors)
    return clean


# Every limit a scope may set (the firm row sets the seed's four always; store.LIMIT_FIELDS are those four), with
# the places after the decimal point and the digits before it that its column holds.
SCOPE_LIMIT_FIELDS: dict[str, tuple[int, int]] = {
    "max_order_quantity": (8, 16),
    "max_order_value": (2, 22),
    "max_position_size": (2, 22),
    "max_daily_volume": (2, 22),
    "max_net_exposure": (2, 22),
    "max_gross_exposure": (2, 22),
    "max_daily_loss": (2, 22),
    "price_collar_pct": (4, 3),
    "max_var": (2, 22),  # checked by the scheduled VaR run (analytics), never per order
}
NO_REASON = "none given"


def scope_limits_validate(scope: Scope, changes: dict[str, Any]) -> dict[str, Decimal | None]:
    """Validate a scope's limit changes: positive numbers that fit their columns; null clears a limit, except
    the firm's four seed limits (the firm row always sets them)."""
    clean: dict[str, Decimal | None] = {}
    errors: dict[str, str] = {}
    for name, value in changes.items():
        if name not in SCOPE_LIMIT_FIELDS:
            errors[name] = "Unknown limit."
            continue
        if value is None:
            if scope == FIRM and name in LIMIT_FIELDS:
                errors[name] = "The firm always sets this limit: it cannot be cleared."
            else:
                clean[name] = None
            continue
        places, digits = SCOPE_LIMIT_FIELDS[name]
        try:
            number = Decimal(str(value)) if not isinstance(value, bool) else Decimal("NaN")
        except ArithmeticError:
            number = Decimal("NaN")
        if not number.is_finite():
            errors[name] = "A valid number is required."
        elif number <= 0:
            errors[name] = "Must be a positive number."
        elif number >= Decimal(10) ** digits or number != number.quantize(Decimal(1).scaleb(-places)):
            errors[name] = f"At most {digits} digits before the decimal point and {places} after it."
        else:
            clean[name] = number
    if errors:
        raise InvalidInput("Invalid limits", code="invalid_limits", fields=errors)
    return clean


def limits_row(scope: Scope) -> RiskLimits | None:
    """A scope's stored limits (None if it sets none); the firm's row always exists."""
    if scope == FIRM:
        return store.firm_limits()
    return RiskLimits.objects.filter(scope=scope.limit_scope, scope_key=scope.key).first()


def _limits_write(*, actor: User | None, scope: Scope, clean: dict[str, Decimal | None], reason: str) -> RiskLimits:
    """Write validated changes to a scope's row (created if missing) with ONE LIMITS_CHANGED event. Caller holds
    the risk lock, in a transaction."""
    if scope == FIRM:
        limits = RiskLimits.objects.select_for_update().get(pk=store.firm_limits().pk)
    else:
        limits, _ = RiskLimits.objects.select_for_update().get_or_create(scope=scope.limit_scope, scope_key=scope.key)
    old = {name: getattr(limits, name) for name in SCOPE_LIMIT_FIELDS}
    for name, value in clean.items():
        setattr(limits, name, value)
    limits.updated_by = actor if getattr(actor, "pk", None) else None
    limits.save()
    limits.refresh_from_db()  # the stored values, quantized by their columns
    new = {name: getattr(limits, name) for name in SCOPE_LIMIT_FIELDS}
    changed = {name: {"old": old[name], "new": new[name]} for name in SCOPE_LIMIT_FIELDS if old[name] != new[name]}
    event_record(
        event_type=EventType.LIMITS_CHANGED,
        actor=actor,
        payload={
            "scope": str(scope),
            "old": old,
            "new": new,
            "changed": changed,
            "reason": reason[:500] or NO_REASON,
        },
    )
    return limits


@transaction.atomic
def scope_limits_update(
    *, actor: User | None, scope: Scope, changes: dict[str, Decimal | None], reason: str
) -> RiskLimits:
    """Set or clear (null) some limits of one scope, under the risk lock so no decision sees half a change; the
    scope must name something that exists. One LIMITS_CHANGED event with the old and the new values."""
    clean = scope_limits_validate(scope, changes)
    scope_require(scope)
    store.lock()
    return _limits_write(actor=actor, scope=scope, clean=clean, reason=reason)


@transaction.atomic
def risk_limits_update(*, actor: User | None, reason: str = "", **changes: Any) -> RiskLimits:
    """Change the firm-wide limits (all or some): the v1 /risk/limits and the admin form. The firm scope's
    update with v1's validation; a reason not given is recorded as such."""
    clean = limits_validate(changes)
    store.lock()
    return _limits_write(actor=actor, scope=FIRM, clean=dict(clean), reason=reason)


@transaction.atomic
def kill_switch_state_set(*, actor: User | None, enabled: bool, reason: str = "") -> tuple[RiskState, Event]:
    """Set the firm's kill switch (v1): the firm scope HALTED or ACTIVE, with KILL_SWITCH_ACTIVATED / DEACTIVATED
    as v1 recorded them (and TRADING_STATE_CHANGED). Answers the state and the event that causes the open orders'
    cancellations, which are the caller's (orders.services.kill_switch_set), in the same transaction."""
    state = store.lock()
    target = TradingState.HALTED if enabled else TradingState.ACTIVE
    _, event = _firm_trading_state_write(state, actor=actor, target=target, reason=reason, kill_switch_event=True)
    return state, event


def trading_state_write(*, actor: User | None, scope: Scope, state: str, reason: str) -> tuple[str, Event]:
    """Write a scope's trading state with its TRADING_STATE_CHANGED event {scope, state, previous, reason}.
    Caller holds the risk lock and the orders it cancels (orders.services.scope_state_set), in a transaction.
    The firm's is RiskState's, with the v1 kill switch kept equal to HALTED (and its v1 event when the switch
    moves). Answers the previous state and the event the scope's cancellations are caused by."""
    if state not in TradingState.values:
        raise InvalidInput(
            f"Unknown trading state {state!r}",
            code="invalid_state",
            fields={"state": f"Use one of {', '.join(TradingState.values)}."},
        )
    if scope == FIRM:
        firm = store.lock()
        return _firm_trading_state_write(firm, actor=actor, target=state, reason=reason, kill_switch_event=False)
    row, _ = ScopeState.objects.select_for_update().get_or_create(scope=str(scope))
    previous = row.trading_state
    row.trading_state = state
    row.reason = reason[:1000]
    row.changed_at = timezone.now()
    row.changed_by = actor if getattr(actor, "pk", None) else None
    row.save(update_fields=["trading_state", "reason", "changed_at", "changed_by", "updated_at"])
    event = _trading_state_event(actor=actor, scope=scope, state=state, previous=previous, reason=reason)
    return previous, event


def _trading_state_event(*, actor: User | None, scope: Scope, state: str, previous: str, reason: str) -> Event:
    return event_record(
        event_type=EventType.TRADING_STATE_CHANGED,
        actor=actor,
        payload={"scope": str(scope), "state": state, "previous": previous, "reason": reason[:1000] or NO_REASON},
    )


def _firm_trading_state_write(
    state: RiskState, *, actor: User | None, target: str, reason: str, kill_switch_event: bool
) -> tuple[str, Event]:
    previous, was = state.trading_state, state.kill_switch_enabled
    enabled = target == TradingState.HALTED
    state.trading_state = target
    state.kill_switch_enabled = enabled
    state.kill_switch_reason = reason[:1000]
    state.kill_switch_changed_at = timezone.now()
    state.kill_switch_changed_by = actor if getattr(actor, "pk", None) else None
    state.save(
        update_fields=[
            "trading_state",
            "kill_switch_enabled",
            "kill_switch_reason",
            "kill_switch_changed_at",
            "kill_switch_changed_by",
            "updated_at",
        ]
    )
    event = _trading_state_event(actor=actor, scope=FIRM, state=target, previous=previous, reason=reason)
    if kill_switch_event or enabled or was:
        # v1's record of the switch, the cause of the cancellations as it was in v1
        event = event_record(
            event_type=EventType.KILL_SWITCH_ACTIVATED if enabled else EventType.KILL_SWITCH_DEACTIVATED,
            actor=actor,
            payload={"enabled": enabled, "was_enabled": was, "reason": reason[:1000]},
        )
    return previous, event
