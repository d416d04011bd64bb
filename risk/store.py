"""The risk state's storage: take the risk lock and read what a decision needs, reserve, release, book fills.

Every risk decision and every change of exposure runs under one lock, the RiskState row (SELECT ... FOR
UPDATE on PostgreSQL; on SQLite the transaction itself is IMMEDIATE, settings.py). Lock order everywhere:
the RiskState row first, then Order rows by primary key, then Position rows (written only by holders of
the RiskState lock).

The speed of the submission path lives here and nowhere else: on PostgreSQL the lock and every read after
it go in one round trip (core.sql.pipelined), and a batch's reservations are one statement. The SQLite of
`make run` reads through the ORM and reserves with one UPDATE per symbol; CI runs the order path's tests
on both databases (`make test-sqlite`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from django.db import connection
from django.db.models import F
from django.utils import timezone

from audit.models import EventType
from audit.services import event_record
from core.sql import Statement, run
from risk import checks
from risk.models import FIRM_DEFAULTS, FIRM_STATE_ID, LimitScope, Position, RiskLimits, RiskState
from risk.positions import PositionState, apply_fill

ZERO = Decimal(0)
LIMIT_FIELDS = ("max_position_size", "max_daily_volume", "max_net_exposure", "max_gross_exposure")
STATE_COLUMNS = ("id", "kill_switch_enabled", "trading_day", "executed_volume", "open_volume")
POSITION_COLUMNS = (
    "symbol",
    "quantity",
    "mark_price",
    "open_buy_quantity",
    "open_buy_notional",
    "open_sell_quantity",
    "open_sell_notional",
)


def utc_today(now: dt.datetime | None = None) -> dt.date:
    """The UTC trading day of `now` (default: the clock)."""
    return (now or timezone.now()).astimezone(dt.UTC).date()


def firm_limits() -> RiskLimits:
    limits, _ = RiskLimits.objects.get_or_create(scope=LimitScope.FIRM, scope_key="", defaults=FIRM_DEFAULTS)
    return limits


def lock() -> RiskState:
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


@dataclass(frozen=True)
class Locked:
    """The risk lock held, the state the checks see, and the rows of the caller's own reads (in order)."""

    state: RiskState
    snapshot: checks.RiskSnapshot
    rows: list[list[tuple[Any, ...]]]


def lock_and_read(*, also: Sequence[Statement] = ()) -> Locked:
    """Take the risk lock, then read the limits, the positions and the caller's `also` statements, each
    read after the lock is held. PostgreSQL: one round trip. Caller must be in a transaction."""
    if connection.vendor != "postgresql":  # the ORM's reads, which convert SQLite's numbers to Decimal
        state = lock()
        return Locked(state, snapshot(state), [rows or [] for rows in run(also)])
    qn = connection.ops.quote_name

    def select(model: Any, columns: tuple[str, ...], where: str = "") -> str:
        return f"SELECT {', '.join(map(qn, columns))} FROM {qn(model._meta.db_table)} {where}"  # noqa: S608

    firm = f"WHERE {qn('scope')} = %s AND {qn('scope_key')} = %s"
    state_rows, limit_rows, positions, *rows = run(
        [
            Statement(select(RiskState, STATE_COLUMNS, f"WHERE {qn('id')} = %s FOR UPDATE"), [FIRM_STATE_ID]),
            Statement(select(RiskLimits, LIMIT_FIELDS, firm), [LimitScope.FIRM.value, ""]),
            Statement(select(Position, POSITION_COLUMNS), []),
            *also,
        ]
    )
    if not state_rows or not limit_rows:  # a new database: the rows are created, under the lock, the ORM's way
        state = lock()
        return Locked(state, snapshot(state), [rows or [] for rows in run(also)])
    state = RiskState(**dict(zip(STATE_COLUMNS, state_rows[0], strict=True)))
    return Locked(state, _snapshot(state, checks.Limits(*limit_rows[0]), positions), [r or [] for r in rows])


def snapshot(state: RiskState) -> checks.RiskSnapshot:
    """The state the checks see, read under the lock (after `lock`, in the same transaction)."""
    positions = Position.objects.values_list(*POSITION_COLUMNS)
    limits = firm_limits()
    return _snapshot(state, checks.Limits(*(getattr(limits, name) for name in LIMIT_FIELDS)), positions)


def _snapshot(state: RiskState, limits: checks.Limits, positions: Any) -> checks.RiskSnapshot:
    return checks.RiskSnapshot(
        limits=limits,
        kill_switch_active=state.kill_switch_enabled,
        trading_day=state.trading_day or utc_today(),
        executed_volume=state.executed_volume,
        open_volume=state.open_volume,
        books=tuple(checks.SymbolBook(*row) for row in positions or ()),
    )


@dataclass(frozen=True)
class Reservation:
    """What an approved order holds against the limits until it ends: its quantity and notional."""

    symbol: str
    side: checks.Side
    quantity: Decimal
    price: Decimal

    @classmethod
    def of(cls, order: OrderTerms) -> Reservation:
        """What an order (any object with its symbol, side, quantity and price) reserved when approved."""
        return cls(order.symbol, checks.Side(order.side), order.quantity, order.price)


class OrderTerms(Protocol):
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal


def reserve(*, state: RiskState, reservations: Sequence[Reservation]) -> None:
    """Reserve approved orders (a batch of submissions): per symbol, the open buy and sell quantity and
    notional grow by the sum of its orders; the firm's open volume by the total notional. Caller holds the
    risk lock (positions are created only under it, so a symbol not updated is new)."""
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
    (rows,) = run([Statement(sql, [*columns, total, state.pk])])
    return set(rows[0][0]) if rows else set()


def release(*, state: RiskState, reservation: Reservation) -> None:
    """Give back what `reserve` took for one order (it was filled, failed or cancelled). Caller holds the
    risk lock."""
    notional = reservation.quantity * reservation.price
    if reservation.side == checks.Side.BUY:
        qty_field, notional_field = "open_buy_quantity", "open_buy_notional"
    else:
        qty_field, notional_field = "open_sell_quantity", "open_sell_notional"
    Position.objects.filter(symbol=reservation.symbol).update(
        **{qty_field: F(qty_field) - reservation.quantity, notional_field: F(notional_field) - notional}
    )
    RiskState.objects.filter(pk=state.pk).update(open_volume=F("open_volume") - notional)


def fill_book(
    *, state: RiskState, reservation: Reservation, fill_quantity: Decimal, fill_price: Decimal, now: dt.datetime
) -> Position:
    """Book a fill: release the order's reservation; position, average price, realised P&L, mark; the day's
    volume. Caller holds the risk lock.

    Daily volume counts the filled quantity at the order's limit price, the same notional that was
    reserved and checked, so slippage can never push the day over its limit after approval."""
    release(state=state, reservation=reservation)
    position = Position.objects.select_for_update().get(symbol=reservation.symbol)
    new = apply_fill(
        PositionState(position.quantity, position.average_price, position.realized_pnl),
        side=reservation.side,
        quantity=fill_quantity,
        price=fill_price,
    )
    position.quantity, position.average_price, position.realized_pnl = new.quantity, new.average_price, new.realized_pnl
    position.mark_price = fill_price
    position.save(update_fields=["quantity", "average_price", "realized_pnl", "mark_price", "updated_at"])
    _volume_add(state=state, notional=fill_quantity * reservation.price, now=now)
    return position


def _volume_add(*, state: RiskState, notional: Decimal, now: dt.datetime) -> None:
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
