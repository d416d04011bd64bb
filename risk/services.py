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
from risk.models import RiskLimits, RiskState
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


@transaction.atomic
def risk_limits_update(*, actor: User | None, reason: str = "", **changes: Any) -> RiskLimits:
    """Change the firm-wide limits (all or some). Validated here, so the API and the admin agree; audited
    with the old and the new values. Takes the risk lock so no decision sees half a change."""
    clean = limits_validate(changes)
    store.lock()
    limits = RiskLimits.objects.select_for_update().get(pk=store.firm_limits().pk)
    old = {name: getattr(limits, name) for name in LIMIT_FIELDS}
    for name, value in clean.items():
        setattr(limits, name, value)
    limits.updated_by = actor if getattr(actor, "pk", None) else None
    limits.save()
    new = {name: getattr(limits, name) for name in LIMIT_FIELDS}
    changed = {name: {"old": old[name], "new": new[name]} for name in LIMIT_FIELDS if old[name] != new[name]}
    event_record(
        event_type=EventType.LIMITS_CHANGED,
        actor=actor,
        payload={
            "scope": limits.scope,
            "scope_key": limits.scope_key,
            "old": old,
            "new": new,
            "changed": changed,
            "reason": reason[:500],
        },
    )
    return limits


@transaction.atomic
def kill_switch_state_set(*, actor: User | None, enabled: bool, reason: str = "") -> tuple[RiskState, Event]:
    """Set the firm's kill switch, with KILL_SWITCH_ACTIVATED / DEACTIVATED, under the risk lock: every
    decision after this one sees it. Answers the state and the event. Cancelling the open orders is the
    caller's (orders.services.kill_switch_set), in the same transaction."""
    state = store.lock()
    was = state.kill_switch_enabled
    state.kill_switch_enabled = enabled
    state.kill_switch_reason = reason[:1000]
    state.kill_switch_changed_at = timezone.now()
    state.kill_switch_changed_by = actor if getattr(actor, "pk", None) else None
    state.save(
        update_fields=[
            "kill_switch_enabled",
            "kill_switch_reason",
            "kill_switch_changed_at",
            "kill_switch_changed_by",
            "updated_at",
        ]
    )
    event = event_record(
        event_type=EventType.KILL_SWITCH_ACTIVATED if enabled else EventType.KILL_SWITCH_DEACTIVATED,
        actor=actor,
        payload={"enabled": enabled, "was_enabled": was, "reason": reason[:1000]},
    )
    return state, event
