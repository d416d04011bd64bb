"""Risk use-cases that write: the locked decision, reservations, fills, limits and the kill switch.

Lock order everywhere: the RiskState row first, then Order rows by primary key, then Position rows
(Position rows are only written by holders of the RiskState lock). Every function here that writes
must be called inside the caller's transaction, or opens its own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Subquery
from django.utils import timezone

from audit.models import EventType
from audit.services import event_record
from itirp.exceptions import InvalidInput
from risk import checks
from risk.models import FIRM_STATE_ID, LimitScope, Position, RiskLimits, RiskState
from risk.positions import PositionState, apply_fill

LIMIT_FIELDS = ("max_position_size", "max_daily_volume", "max_net_exposure", "max_gross_exposure")


def utc_today(now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(dt.UTC).date()


def firm_limits() -> RiskLimits:
    limits, _ = RiskLimits.objects.get_or_create(scope=LimitScope.FIRM, scope_key="")
    return limits


def risk_state_lock() -> RiskState:
    """Take the lock that serialises every risk decision. Caller must be in a transaction.

    The firm limits come in the same round trip (scalar subqueries, read under the lock like before), so a
    decision costs one statement fewer while it holds the lock; risk_snapshot uses them."""
    firm = RiskLimits.objects.filter(scope=LimitScope.FIRM, scope_key="")
    state = (
        RiskState.objects.select_for_update(of=("self",))
        .filter(pk=FIRM_STATE_ID)
        .annotate(**{f"firm_{name}": Subquery(firm.values(name)[:1]) for name in LIMIT_FIELDS})
        .first()
    )
    if state is None:
        RiskState.objects.get_or_create(pk=FIRM_STATE_ID)
        state = RiskState.objects.select_for_update().get(pk=FIRM_STATE_ID)
    return state


def limits_of(limits: RiskLimits) -> checks.Limits:
    return checks.Limits(**{name: getattr(limits, name) for name in LIMIT_FIELDS})


def _snapshot_limits(state: RiskState) -> checks.Limits:
    """The firm limits read with the lock (risk_state_lock), else read now."""
    values = [getattr(state, f"firm_{name}", None) for name in LIMIT_FIELDS]
    if any(value is None for value in values):
        return limits_of(firm_limits())
    return checks.Limits(*values)


def risk_snapshot(state: RiskState) -> checks.RiskSnapshot:
    """The state the checks see, read under the lock."""
    # Plain tuples, not model instances: this runs while every other decision waits for the lock.
    positions = Position.objects.values_list(
        "symbol",
        "quantity",
        "mark_price",
        "open_buy_quantity",
        "open_buy_notional",
        "open_sell_quantity",
        "open_sell_notional",
    )
    return checks.RiskSnapshot(
        limits=_snapshot_limits(state),
        kill_switch_active=state.kill_switch_enabled,
        trading_day=state.trading_day or utc_today(),
        executed_volume=state.executed_volume,
        open_volume=state.open_volume,
        books=tuple(checks.SymbolBook(*row) for row in positions),
    )


def reservation_add(*, state: RiskState, symbol: str, side: str, quantity: Decimal, price: Decimal) -> None:
    """Count an approved order's quantity and notional against the limits until the order ends."""
    notional = quantity * price
    qty_field, notional_field = _open_fields(side)
    if connection.vendor == "postgresql":
        updated = _reserve_in_one_statement(state, symbol, qty_field, notional_field, quantity, notional)
    else:
        updated = Position.objects.filter(symbol=symbol).update(
            **{qty_field: F(qty_field) + quantity, notional_field: F(notional_field) + notional}
        )
        RiskState.objects.filter(pk=state.pk).update(open_volume=F("open_volume") + notional)
    if not updated:
        Position.objects.create(symbol=symbol, **{qty_field: quantity, notional_field: notional})


def _reserve_in_one_statement(
    state: RiskState, symbol: str, qty_field: str, notional_field: str, quantity: Decimal, notional: Decimal
) -> int:
    """The two UPDATEs of reservation_add (the symbol's open columns, the firm's open volume) in one round
    trip while the lock is held; answers how many position rows were updated (0: the symbol is new)."""
    # Identifiers only from the models and _open_fields' two fixed pairs; every value is a parameter.
    position, risk_state = Position._meta.db_table, RiskState._meta.db_table
    sql = (
        f'WITH p AS (UPDATE "{position}" SET "{qty_field}" = "{qty_field}" + %s, '  # noqa: S608
        f'"{notional_field}" = "{notional_field}" + %s WHERE "symbol" = %s RETURNING 1) '
        f'UPDATE "{risk_state}" SET "open_volume" = "open_volume" + %s WHERE "id" = %s '
        "RETURNING (SELECT count(*) FROM p)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [quantity, notional, symbol, notional, state.pk])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def reservation_release(*, state: RiskState, symbol: str, side: str, quantity: Decimal, price: Decimal) -> None:
    """Give back what reservation_add took (the order was filled, failed or cancelled)."""
    notional = quantity * price
    qty_field, notional_field = _open_fields(side)
    Position.objects.filter(symbol=symbol).update(
        **{qty_field: F(qty_field) - quantity, notional_field: F(notional_field) - notional}
    )
    RiskState.objects.filter(pk=state.pk).update(open_volume=F("open_volume") - notional)


def _open_fields(side: str) -> tuple[str, str]:
    if side == checks.Side.BUY:
        return "open_buy_quantity", "open_buy_notional"
    return "open_sell_quantity", "open_sell_notional"


def fill_apply(
    *,
    state: RiskState,
    symbol: str,
    side: str,
    order_quantity: Decimal,
    order_price: Decimal,
    fill_quantity: Decimal,
    fill_price: Decimal,
    now: dt.datetime,
) -> Position:
    """Book a fill: position, average price, realised P&L, mark; the day's volume; release the reservation.

    Daily volume counts the filled quantity at the order's limit price, the same notional that was
    reserved and checked, so slippage can never push the day over its limit after approval.
    """
    reservation_release(state=state, symbol=symbol, side=side, quantity=order_quantity, price=order_price)
    position = Position.objects.select_for_update().get(symbol=symbol)
    new = apply_fill(
        PositionState(position.quantity, position.average_price, position.realized_pnl),
        side=side,
        quantity=fill_quantity,
        price=fill_price,
    )
    position.quantity, position.average_price, position.realized_pnl = new.quantity, new.average_price, new.realized_pnl
    position.mark_price = fill_price
    position.save(update_fields=["quantity", "average_price", "realized_pnl", "mark_price", "updated_at"])
    volume_add(state=state, notional=fill_quantity * order_price, now=now)
    return position


def volume_add(*, state: RiskState, notional: Decimal, now: dt.datetime) -> None:
    """Add executed notional to the UTC day's volume; the first fill of a new UTC day starts it at zero."""
    today = utc_today(now)
    state.refresh_from_db(fields=["trading_day", "executed_volume"])
    if state.trading_day != today:
        previous_day, previous = state.trading_day, state.executed_volume
        state.trading_day, state.executed_volume = today, notional
        if previous_day is not None:
            event_record(
                event_type=EventType.DAILY_VOLUME_RESET,
                payload={
                    "previous_day": previous_day.isoformat(),
                    "previous_volume": previous,
                    "day": today.isoformat(),
                },
            )
    else:
        state.executed_volume += notional
    state.save(update_fields=["trading_day", "executed_volume", "updated_at"])


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
def risk_limits_update(*, actor: Any, reason: str = "", **changes: Any) -> RiskLimits:
    """Change the firm-wide limits (all or some). Validated here, so the API and the admin agree; audited
    with the old and the new values. Takes the risk lock so no decision sees half a change."""
    clean = limits_validate(changes)
    risk_state_lock()
    limits = RiskLimits.objects.select_for_update().get(pk=firm_limits().pk)
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
def risk_controls_update(
    *, actor: Any, kill_switch_enabled: bool | None = None, reason: str = "", **changes: Any
) -> RiskLimits:
    """Change limits and, if asked, the kill switch together: both or neither (PUT/PATCH /risk/limits).

    The limit values are validated before anything changes, so a bad value cannot leave the kill switch
    switched while the answer says 400."""
    limits_validate(changes)
    state = risk_state_lock()
    if kill_switch_enabled is not None and kill_switch_enabled != state.kill_switch_enabled:
        kill_switch_set(actor=actor, enabled=kill_switch_enabled, reason=reason or "changed with the limits")
    if changes:
        return risk_limits_update(actor=actor, reason=reason, **changes)
    return firm_limits()


@transaction.atomic
def kill_switch_set(*, actor: Any, enabled: bool, reason: str = "") -> tuple[RiskState, list[uuid.UUID]]:
    """Turn the kill switch on or off. On: new orders are refused at once (the switch is read under the
    same lock as every decision) and every open order that has not started executing is cancelled,
    each cancellation caused by the switch's event. Returns the state and the cancelled order ids."""
    state = risk_state_lock()
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
    cancelled: list[uuid.UUID] = []
    if enabled:
        from orders.services import orders_cancel_open  # orders depends on risk; this is the one way back

        cancelled = orders_cancel_open(
            state=state,
            actor=actor,
            reason=f"Kill switch activated: {reason}".strip(": "),
            causation_id=event.event_id,
        )
    return state, cancelled
