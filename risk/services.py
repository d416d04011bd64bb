"""Risk use-cases that write: the locked decision, reservations, fills, limits and the kill switch.

Lock order everywhere: the RiskState row first, then Order rows by primary key, then Position rows
(Position rows are only written by holders of the RiskState lock). Every function here that writes
must be called inside the caller's transaction, or opens its own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from audit.models import EventType
from audit.services import event_record
from core.exceptions import InvalidInput
from core.sql import pipelined
from risk import checks
from risk.models import FIRM_STATE_ID, LimitScope, Position, RiskLimits, RiskState
from risk.positions import PositionState, apply_fill

ZERO = Decimal(0)
LIMIT_FIELDS = ("max_position_size", "max_daily_volume", "max_net_exposure", "max_gross_exposure")


def utc_today(now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(dt.UTC).date()


def firm_limits() -> RiskLimits:
    limits, _ = RiskLimits.objects.get_or_create(scope=LimitScope.FIRM, scope_key="")
    return limits


def risk_state_lock() -> RiskState:
    """Take the lock that serialises every risk decision. Caller must be in a transaction.

    The lock alone: anything else the decision reads (limits, positions) is read by a later statement, so
    that, in READ COMMITTED, it sees what the lock's previous holder committed. (A subquery of this same
    statement would read from the snapshot taken before the wait for the lock: limits just lowered by the
    holder would be missed.)"""
    state = RiskState.objects.select_for_update().filter(pk=FIRM_STATE_ID).first()
    if state is None:
        RiskState.objects.get_or_create(pk=FIRM_STATE_ID)
        state = RiskState.objects.select_for_update().get(pk=FIRM_STATE_ID)
    return state


def limits_of(limits: RiskLimits) -> checks.Limits:
    return checks.Limits(**{name: getattr(limits, name) for name in LIMIT_FIELDS})


POSITION_BOOK_COLUMNS = (
    "symbol",
    "quantity",
    "mark_price",
    "open_buy_quantity",
    "open_buy_notional",
    "open_sell_quantity",
    "open_sell_notional",
)


def risk_snapshot(state: RiskState) -> checks.RiskSnapshot:
    """The state the checks see, read under the lock (after risk_state_lock, in the same transaction)."""
    # Plain tuples, not model instances: this runs while every other decision waits for the lock.
    positions = Position.objects.values_list(*POSITION_BOOK_COLUMNS)
    return _snapshot(state, limits_of(firm_limits()), positions)


def _snapshot(state: RiskState, limits: checks.Limits, positions: Any) -> checks.RiskSnapshot:
    return checks.RiskSnapshot(
        limits=limits,
        kill_switch_active=state.kill_switch_enabled,
        trading_day=state.trading_day or utc_today(),
        executed_volume=state.executed_volume,
        open_volume=state.open_volume,
        books=tuple(checks.SymbolBook(*row) for row in positions),
    )


STATE_LOCK_COLUMNS = ("id", "kill_switch_enabled", "trading_day", "executed_volume", "open_volume")


def risk_lock_and_snapshot(also: QuerySet | None = None) -> tuple[RiskState, checks.RiskSnapshot, list[Any]]:
    """risk_state_lock and risk_snapshot together, and the rows of `also` (a values_list query the caller
    must run under the lock): on PostgreSQL in one round trip, the statements pipelined, each reading
    after the lock is held."""
    if connection.vendor != "postgresql":
        state = risk_state_lock()
        return state, risk_snapshot(state), list(also) if also is not None else []
    qn = connection.ops.quote_name

    def select(model: Any, columns: tuple[str, ...], where: str = "") -> str:
        return f"SELECT {', '.join(map(qn, columns))} FROM {qn(model._meta.db_table)} {where}"  # noqa: S608

    firm = f"WHERE {qn('scope')} = %s AND {qn('scope_key')} = %s"
    lock, limits, positions, *rows = pipelined(
        [
            (select(RiskState, STATE_LOCK_COLUMNS, f"WHERE {qn('id')} = %s FOR UPDATE"), [FIRM_STATE_ID]),
            (select(RiskLimits, LIMIT_FIELDS, firm), [LimitScope.FIRM.value, ""]),
            (select(Position, POSITION_BOOK_COLUMNS), []),
            *([also.query.sql_with_params()] if also is not None else []),
        ]
    )
    if not lock or not limits:  # a new database: the rows are created (under the lock) the ORM's way
        state = risk_state_lock()
        return state, risk_snapshot(state), list(also) if also is not None else []
    state = RiskState(**dict(zip(STATE_LOCK_COLUMNS, lock[0], strict=True)))
    return state, _snapshot(state, checks.Limits(*limits[0]), positions or []), (rows[0] or []) if rows else []


@dataclass(frozen=True)
class Reservation:
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal


def reservation_add(*, state: RiskState, symbol: str, side: str, quantity: Decimal, price: Decimal) -> None:
    """Count an approved order's quantity and notional against the limits until the order ends."""
    reservations_add(state=state, reservations=[Reservation(symbol, side, quantity, price)])


def reservations_add(*, state: RiskState, reservations: list[Reservation]) -> None:
    """Reserve several approved orders at once (a batch of submissions): per symbol, the open buy and sell
    quantity and notional grow by the sum of its orders; the firm's open volume by the total notional.
    Caller holds the risk lock (positions are created only under it, so a symbol not updated is new)."""
    sums: dict[str, list[Decimal]] = {}
    for r in reservations:
        row = sums.setdefault(r.symbol, [ZERO, ZERO, ZERO, ZERO])
        offset = 0 if r.side == checks.Side.BUY else 2
        row[offset] += r.quantity
        row[offset + 1] += r.quantity * r.price
    if not sums:
        return
    total = sum((row[1] + row[3] for row in sums.values()), ZERO)
    if connection.vendor == "postgresql":
        updated = _reserve_in_one_statement(state, sums, total)
    else:
        updated = set()
        for symbol, (bq, bn, sq, sn) in sums.items():
            if Position.objects.filter(symbol=symbol).update(
                open_buy_quantity=F("open_buy_quantity") + bq,
                open_buy_notional=F("open_buy_notional") + bn,
                open_sell_quantity=F("open_sell_quantity") + sq,
                open_sell_notional=F("open_sell_notional") + sn,
            ):
                updated.add(symbol)
        RiskState.objects.filter(pk=state.pk).update(open_volume=F("open_volume") + total)
    Position.objects.bulk_create(
        [
            Position(
                symbol=symbol,
                open_buy_quantity=bq,
                open_buy_notional=bn,
                open_sell_quantity=sq,
                open_sell_notional=sn,
            )
            for symbol, (bq, bn, sq, sn) in sums.items()
            if symbol not in updated
        ]
    )


def _reserve_in_one_statement(state: RiskState, sums: dict[str, list[Decimal]], total: Decimal) -> set[str]:
    """PostgreSQL: every symbol's open columns and the firm's open volume in one round trip while the lock
    is held; answers the symbols whose position rows were updated (the others are new)."""
    # Identifiers only from the models; every value is a parameter.
    position, risk_state = Position._meta.db_table, RiskState._meta.db_table
    columns = [list(sums), *([row[i] for row in sums.values()] for i in range(4))]
    sql = (
        "WITH v (symbol, bq, bn, sq, sn) AS ("  # noqa: S608
        "SELECT * FROM UNNEST(%s::varchar[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[])), "
        f'p AS (UPDATE "{position}" t SET "open_buy_quantity" = t."open_buy_quantity" + v.bq, '
        '"open_buy_notional" = t."open_buy_notional" + v.bn, '
        '"open_sell_quantity" = t."open_sell_quantity" + v.sq, '
        '"open_sell_notional" = t."open_sell_notional" + v.sn, "updated_at" = now() '
        "FROM v WHERE t.symbol = v.symbol RETURNING t.symbol) "
        f'UPDATE "{risk_state}" SET "open_volume" = "open_volume" + %s WHERE "id" = %s '
        "RETURNING ARRAY(SELECT symbol FROM p)"
    )
    (rows,) = pipelined([(sql, [*columns, total, state.pk])])
    return set(rows[0][0]) if rows else set()


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
