"""Risk use-cases that write: firm limits and the kill switch's state (each with its event, under the risk lock).

Storage of the risk state (the lock, reads for decisions, reservations, fills) is risk.store. Halting
trading also cancels open orders: that spans two domains and lives in the higher one, orders.services.

Four-eyes (approvals.policy) is asked here, in the writes every path goes through (API, back office, orders'
actions): a limit raise over the threshold or a release of HALTED is kept as a PendingChange instead of being
written, and the service answers that change. Approval applies it through these same functions, with `approval`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from approvals import policy
from approvals import services as approvals
from approvals.models import Approval, ChangeKind, PendingChange
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


def _limits_write(
    *, actor: User | None, scope: Scope, clean: dict[str, Decimal | None], reason: str, approval: Approval | None
) -> RiskLimits | PendingChange:
    """Write validated changes to a scope's row (created if missing) with ONE LIMITS_CHANGED event, or, if the
    four-eyes policy holds a raise back, keep them all as a pending change and write nothing. Caller holds the
    risk lock, in a transaction."""
    if approval is None:
        current = limits_row(scope)
        before = {name: getattr(current, name) if current else None for name in clean}
        raised = policy.limits_raised(before, clean)
        if raised:
            # only what changes is kept: approval applies it over whatever the other limits are by then
            changing = {name: value for name, value in clean.items() if value != before[name]}
            change = {"limits": changing, "old": {name: before[name] for name in changing}, "raised": raised}
            return approvals.change_request(
                actor=actor, kind=ChangeKind.LIMIT_RAISE, scope=str(scope), change=change, reason=reason
            )
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
            **(approval.payload() if approval else {}),
        },
    )
    return limits


@transaction.atomic
def scope_limits_update(
    *,
    actor: User | None,
    scope: Scope,
    changes: dict[str, Decimal | None],
    reason: str,
    approval: Approval | None = None,
) -> RiskLimits | PendingChange:
    """Set or clear (null) some limits of one scope, under the risk lock so no decision sees half a change; the
    scope must name something that exists. One LIMITS_CHANGED event with the old and the new values; or the
    pending change, if four-eyes holds the raise back."""
    clean = scope_limits_validate(scope, changes)
    scope_require(scope)
    store.lock()
    return _limits_write(actor=actor, scope=scope, clean=clean, reason=reason, approval=approval)


@transaction.atomic
def risk_limits_update(*, actor: User | None, reason: str = "", **changes: Any) -> RiskLimits | PendingChange:
    """Change the firm-wide limits (all or some): the v1 /risk/limits and the admin form. The firm scope's
    update with v1's validation; a reason not given is recorded as such."""
    clean = limits_validate(changes)
    store.lock()
    return _limits_write(actor=actor, scope=FIRM, clean=dict(clean), reason=reason, approval=None)


def _release_request(
    *, actor: User | None, scope: Scope, previous: str, target: str, reason: str, via: str
) -> PendingChange | None:
    """A release of HALTED kept for approval when the policy says so (None: go ahead)."""
    if previous != TradingState.HALTED or target == TradingState.HALTED or not policy.halt_release_waits():
        return None
    change = {"state": target, "previous": previous, "via": via}
    return approvals.change_request(
        actor=actor, kind=ChangeKind.STATE_RELEASE, scope=str(scope), change=change, reason=reason
    )


@transaction.atomic
def kill_switch_state_set(
    *, actor: User | None, enabled: bool, reason: str = "", approval: Approval | None = None
) -> tuple[RiskState, Event] | PendingChange:
    """Set the firm's kill switch (v1): the firm scope HALTED or ACTIVE, with KILL_SWITCH_ACTIVATED / DEACTIVATED
    as v1 recorded them (and TRADING_STATE_CHANGED). Answers the state and the event that causes the open orders'
    cancellations, which are the caller's (orders.services.kill_switch_set), in the same transaction; or the
    pending change, if four-eyes holds the release back."""
    state = store.lock()
    target = TradingState.HALTED if enabled else TradingState.ACTIVE
    if approval is None:
        pending = _release_request(
            actor=actor, scope=FIRM, previous=state.trading_state, target=target, reason=reason, via="kill_switch"
        )
        if pending is not None:
            return pending
    _, event = _firm_trading_state_write(
        state, actor=actor, target=target, reason=reason, kill_switch_event=True, approval=approval
    )
    return state, event


def trading_state_write(
    *, actor: User | None, scope: Scope, state: str, reason: str, approval: Approval | None = None
) -> tuple[str, Event] | PendingChange:
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
        pending = (
            _release_request(
                actor=actor, scope=scope, previous=firm.trading_state, target=state, reason=reason, via="trading_state"
            )
            if approval is None
            else None
        )
        if pending is not None:
            return pending
        return _firm_trading_state_write(
            firm, actor=actor, target=state, reason=reason, kill_switch_event=False, approval=approval
        )
    row, _ = ScopeState.objects.select_for_update().get_or_create(scope=str(scope))
    previous = row.trading_state
    if approval is None:
        pending = _release_request(
            actor=actor, scope=scope, previous=previous, target=state, reason=reason, via="trading_state"
        )
        if pending is not None:
            return pending
    row.trading_state = state
    row.reason = reason[:1000]
    row.changed_at = timezone.now()
    row.changed_by = actor if getattr(actor, "pk", None) else None
    row.save(update_fields=["trading_state", "reason", "changed_at", "changed_by", "updated_at"])
    event = _trading_state_event(
        actor=actor, scope=scope, state=state, previous=previous, reason=reason, approval=approval
    )
    return previous, event


def _trading_state_event(
    *, actor: User | None, scope: Scope, state: str, previous: str, reason: str, approval: Approval | None
) -> Event:
    payload = {"scope": str(scope), "state": state, "previous": previous, "reason": reason[:1000] or NO_REASON}
    return event_record(
        event_type=EventType.TRADING_STATE_CHANGED,
        actor=actor,
        payload={**payload, **(approval.payload() if approval else {})},
    )


def _firm_trading_state_write(
    state: RiskState,
    *,
    actor: User | None,
    target: str,
    reason: str,
    kill_switch_event: bool,
    approval: Approval | None,
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
    event = _trading_state_event(
        actor=actor, scope=FIRM, state=target, previous=previous, reason=reason, approval=approval
    )
    if kill_switch_event or enabled or was:
        # v1's record of the switch, the cause of the cancellations as it was in v1
        event = event_record(
            event_type=EventType.KILL_SWITCH_ACTIVATED if enabled else EventType.KILL_SWITCH_DEACTIVATED,
            actor=actor,
            payload={
                "enabled": enabled,
                "was_enabled": was,
                "reason": reason[:1000],
                **(approval.payload() if approval else {}),
            },
        )
    return previous, event
