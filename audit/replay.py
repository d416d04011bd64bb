"""Replay: rebuild positions, daily volumes, open reservations and order statuses from the events alone, per
scope, and compare them with the live tables.

Every order falls under the firm, its book's desk, its book and its trader (risk.scopes), each holding a
position row per symbol (Position), and under its symbol, whose position is the firm's row. The rebuild
applies the same arithmetic as the live services to each scope's own row (risk.positions.apply_fill for
positions, notional = quantity x order price for reservations and daily volume) and rounds where the
database rounds (NUMERIC(38, 8) keeps 8 places, half away from zero), so a faithful trail gives the same
digits. An ORDER_CREATED written before books existed names no book: it is in desk EQ, book MAIN, as the
migrations (orders/0003, risk/0004) put it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from audit.models import Event, EventType
from orders.models import Order
from risk.models import FIRM_SCOPE, FIRM_STATE_ID, Position, RiskState, ScopeState
from risk.positions import PositionState, apply_fill

PLACES = Decimal("0.00000001")
ZERO = Decimal(0)
# Where the orders of the trail before books were put (books/0001, orders/0003).
LEGACY_DESK, LEGACY_BOOK = "EQ", "MAIN"


def _db(value: Decimal) -> Decimal:
    """What a NUMERIC(…, 8) column stores."""
    return value.quantize(PLACES, ROUND_HALF_UP)


@dataclass
class Holding:
    """One scope's position in one symbol: a Position row's columns."""

    position: PositionState = field(default_factory=PositionState)
    mark_price: Decimal | None = None
    open_buy_quantity: Decimal = ZERO
    open_buy_notional: Decimal = ZERO
    open_sell_quantity: Decimal = ZERO
    open_sell_notional: Decimal = ZERO

    def values(self) -> dict[str, Decimal | None]:
        return {
            "quantity": self.position.quantity,
            "average_price": self.position.average_price,
            "realized_pnl": self.position.realized_pnl,
            "mark_price": self.mark_price,
            "open_buy_quantity": self.open_buy_quantity,
            "open_buy_notional": self.open_buy_notional,
            "open_sell_quantity": self.open_sell_quantity,
            "open_sell_notional": self.open_sell_notional,
        }


@dataclass
class Volumes:
    """One scope's day: a ScopeState row's volume columns (the firm's are RiskState's, kept on State)."""

    trading_day: dt.date | None = None
    executed_volume: Decimal = ZERO
    open_volume: Decimal = ZERO


@dataclass
class ReplayedOrder:
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    desk: str = LEGACY_DESK
    book: str = LEGACY_BOOK
    trader: str = ""
    status: str = "RISK_CHECK"
    reserved: bool = False
    leaves: Decimal = ZERO  # what the order holds reserved: its open quantity
    # One unit's exposure and notional as the decision valued it (RISK_CHECK_PASSED's `valuation`); None for
    # orders decided at their own price.
    exposure_price: Decimal | None = None
    notional_price: Decimal | None = None

    @property
    def unit_exposure(self) -> Decimal:
        return self.price if self.exposure_price is None else self.exposure_price

    @property
    def unit_notional(self) -> Decimal:
        return self.price if self.notional_price is None else self.notional_price

    @property
    def position_scopes(self) -> tuple[str, ...]:
        """The scopes with a position row of their own for this order's symbol."""
        return (FIRM_SCOPE, f"desk:{self.desk}", f"book:{self.book}", f"trader:{self.trader}")

    @property
    def volume_scopes(self) -> tuple[str, ...]:
        """The scopes, beside the firm, whose day volumes this order counts in (ScopeState rows)."""
        return (f"desk:{self.desk}", f"book:{self.book}", f"trader:{self.trader}", f"symbol:{self.symbol}")


@dataclass
class State:
    positions: dict[tuple[str, str], Holding] = field(default_factory=dict)
    scopes: dict[str, Volumes] = field(default_factory=dict)
    orders: dict[uuid.UUID, ReplayedOrder] = field(default_factory=dict)
    open_volume: Decimal = ZERO
    trading_day: dt.date | None = None
    executed_volume: Decimal = ZERO
    anomalies: list[str] = field(default_factory=list)
    events: int = 0

    @property
    def books(self) -> dict[str, Holding]:
        """The firm's positions by symbol (the seed's positions)."""
        return {symbol: h for (scope, symbol), h in self.positions.items() if scope == FIRM_SCOPE}

    def holding(self, scope: str, symbol: str) -> Holding:
        return self.positions.setdefault((scope, symbol), Holding())

    def volumes(self, scope: str) -> Volumes:
        return self.scopes.setdefault(scope, Volumes())

    def _reserve(self, order: ReplayedOrder, sign: int, part: Decimal | None = None) -> None:
        """Reserve (sign +1) or release (-1) `part` of the order, by default all it has open."""
        amount = order.leaves if part is None else part
        quantity, notional = sign * amount, sign * amount * order.unit_notional
        exposure = sign * amount * order.unit_exposure
        for scope in order.position_scopes:
            holding = self.holding(scope, order.symbol)
            if order.side == "BUY":
                holding.open_buy_quantity = _db(holding.open_buy_quantity + quantity)
                holding.open_buy_notional = _db(holding.open_buy_notional + exposure)
            else:
                holding.open_sell_quantity = _db(holding.open_sell_quantity + quantity)
                holding.open_sell_notional = _db(holding.open_sell_notional + exposure)
        self.open_volume = _db(self.open_volume + notional)
        for scope in order.volume_scopes:
            volumes = self.volumes(scope)
            volumes.open_volume = _db(volumes.open_volume + notional)
        order.leaves = order.leaves if sign > 0 else order.leaves - amount
        order.reserved = order.leaves > 0

    def _release(self, order: ReplayedOrder, sequence: int, part: Decimal | None = None) -> None:
        if not order.reserved:
            self.anomalies.append(f"#{sequence}: releases a reservation the order does not hold")
            return
        self._reserve(order, -1, part)

    def apply(self, event: Mapping[str, Any]) -> None:
        """Apply one event (a row of Event.objects.values())."""
        self.events += 1
        kind, seq, payload = event["event_type"], event["sequence"], event["payload"] or {}
        if kind == EventType.DAILY_VOLUME_RESET:
            if self.trading_day is not None and Decimal(str(payload.get("previous_volume"))) != self.executed_volume:
                self.anomalies.append(f"#{seq}: reset says the day's volume was {payload.get('previous_volume')}")
            self.trading_day, self.executed_volume = dt.date.fromisoformat(payload["day"]), ZERO
            return
        order_id = event["order_id"]
        if order_id is None or kind not in ORDER_EVENTS:
            return
        if kind == EventType.ORDER_CREATED:
            self.orders[order_id] = ReplayedOrder(
                symbol=payload["symbol"],
                side=payload["side"],
                quantity=Decimal(str(payload["quantity"])),
                price=Decimal(str(payload["price"])),
                desk=payload.get("desk") or LEGACY_DESK,
                book=payload.get("book") or LEGACY_BOOK,
                trader=str(payload.get("user_id") or ""),
            )
            return
        order = self.orders.get(order_id)
        if order is None:
            self.anomalies.append(f"#{seq}: {kind} for order {order_id} that was never created")
            return
        if kind == EventType.RISK_CHECK_PASSED:
            order.status = "APPROVED"
            valuation = payload.get("valuation") or {}
            if valuation:
                order.exposure_price = Decimal(str(valuation["exposure_price"]))
                order.notional_price = Decimal(str(valuation["notional_price"]))
            order.leaves = order.quantity
            self._reserve(order, +1)
        elif kind == EventType.RISK_CHECK_FAILED:
            order.status = "REJECTED"
        elif kind == EventType.EXECUTION_STARTED:
            order.status = "EXECUTING"
        elif kind == EventType.EXECUTION_ATTEMPT_FAILED:
            if payload.get("will_retry"):
                order.status = "APPROVED"
        elif kind == EventType.ORDER_RESTING:
            order.status = "APPROVED"
        elif kind in (EventType.ORDER_CANCELLED, EventType.EXECUTION_FAILED, EventType.ORDER_EXPIRED):
            order.status = {EventType.ORDER_CANCELLED: "CANCELLED", EventType.EXECUTION_FAILED: "FAILED"}.get(
                kind, "EXPIRED"
            )
            self._release(order, seq)
        elif kind in (EventType.EXECUTION_COMPLETED, EventType.ORDER_PARTIALLY_FILLED):
            self._fill(order, event, payload)
        elif kind == EventType.ORDER_AMENDED:
            # The old reservation is given back and the amended order's taken, valued as its decision did.
            if order.reserved:
                self._release(order, seq)
            order.quantity, order.price = Decimal(str(payload["quantity"])), Decimal(str(payload["price"]))
            valuation = payload.get("valuation") or {}
            if valuation.get("notional_price") is not None:
                order.exposure_price = Decimal(str(valuation["exposure_price"]))
                order.notional_price = Decimal(str(valuation["notional_price"]))
            order.leaves = Decimal(str(payload["leaves_quantity"]))
            self._reserve(order, +1)

    def _fill(self, order: ReplayedOrder, event: Mapping[str, Any], payload: dict[str, Any]) -> None:
        quantity, price = Decimal(str(payload["fill_quantity"])), Decimal(str(payload["fill_price"]))
        order.status = "EXECUTED" if event["event_type"] == EventType.EXECUTION_COMPLETED else "PARTIALLY_FILLED"
        self._release(order, event["sequence"], quantity)
        factor = Decimal(str(payload.get("factor", 1)))  # realised P&L in the reporting currency
        for scope in order.position_scopes:
            holding = self.holding(scope, order.symbol)
            moved = apply_fill(holding.position, side=order.side, quantity=quantity, price=price)
            realized = holding.position.realized_pnl + (
                (moved.realized_pnl - holding.position.realized_pnl) * factor
            ).quantize(PLACES, ROUND_HALF_EVEN)
            holding.position = replace(moved, realized_pnl=realized)
            holding.mark_price = price
        if self.trading_day is None:
            # The first fill ever starts the first day without a reset event.
            self.trading_day = event["timestamp"].astimezone(dt.UTC).date()
        notional = quantity * order.unit_notional
        self.executed_volume = _db(self.executed_volume + notional)
        # A scope's day starts, like the firm's, with its first fill of the day (the firm's reset event, if
        # any, came before this fill's completion, so the firm's day is this fill's day).
        for scope in order.volume_scopes:
            volumes = self.volumes(scope)
            if volumes.trading_day != self.trading_day:
                volumes.trading_day, volumes.executed_volume = self.trading_day, _db(notional)
            else:
                volumes.executed_volume = _db(volumes.executed_volume + notional)


ORDER_EVENTS = frozenset(
    {
        EventType.ORDER_CREATED,
        EventType.RISK_CHECK_PASSED,
        EventType.RISK_CHECK_FAILED,
        EventType.ORDER_CANCELLED,
        EventType.EXECUTION_STARTED,
        EventType.EXECUTION_ATTEMPT_FAILED,
        EventType.EXECUTION_COMPLETED,
        EventType.EXECUTION_FAILED,
        EventType.ORDER_RESTING,
        EventType.ORDER_EXPIRED,
        EventType.ORDER_PARTIALLY_FILLED,
        EventType.ORDER_AMENDED,
    }
)


def rebuild(events: Iterable[Mapping[str, Any]] | None = None) -> State:
    """Fold the events (default: the whole trail, in sequence order) into a State."""
    rows = events
    if rows is None:
        rows = (
            Event.objects.order_by("sequence")
            .values("sequence", "event_type", "order_id", "timestamp", "payload")
            .iterator(chunk_size=5000)
        )
    state = State()
    for event in rows:
        state.apply(event)
    return state


def _position_label(scope: str, symbol: str) -> str:
    # The firm's positions keep the seed's name, the symbol alone.
    return symbol if scope == FIRM_SCOPE else f"{scope} {symbol}"


def _scope_order(key: tuple[str, str]) -> tuple[bool, str, str]:
    return (key[0] != FIRM_SCOPE, key[0], key[1])


def day_volume(volumes: Volumes | ScopeState | None, day: dt.date | None) -> Decimal:
    """A scope's executed volume on `day` (the firm's day): what a check on that day reads. A scope whose
    last fill was on an earlier day has none, whatever day its row still names (risk/0004 started the
    migrated rows on the firm's day)."""
    if volumes is None or volumes.trading_day is None or volumes.trading_day != day:
        return ZERO
    return volumes.executed_volume


def differences(state: State) -> list[str]:
    """Every way the live tables differ from the replayed state (empty: they agree). A position names its
    scope and symbol ("AAPL" for the firm, "book:MAIN AAPL" for a book); a day's volume names its scope."""
    diffs = list(state.anomalies)
    diffs += _position_differences(state)
    risk = RiskState.objects.filter(pk=FIRM_STATE_ID).first()
    live_open = risk.open_volume if risk else ZERO
    live_day = risk.trading_day if risk else None
    live_volume = risk.executed_volume if risk else ZERO
    if live_open != state.open_volume:
        diffs.append(f"risk state open_volume: live {live_open}, replayed {state.open_volume}")
    if live_day != state.trading_day:
        diffs.append(f"risk state trading_day: live {live_day}, replayed {state.trading_day}")
    if live_volume != state.executed_volume:
        diffs.append(f"risk state executed_volume: live {live_volume}, replayed {state.executed_volume}")
    diffs += _scope_differences(state)
    live_orders = dict(Order.objects.values_list("pk", "status"))
    for order_id in sorted(set(live_orders) | set(state.orders), key=str):
        live_status = live_orders.get(order_id)
        replayed_order = state.orders.get(order_id)
        replayed_status = replayed_order.status if replayed_order else None
        if live_status != replayed_status:
            diffs.append(f"order {order_id} status: live {live_status}, replayed {replayed_status}")
    return diffs


def _position_differences(state: State) -> Iterator[str]:
    live_positions = {(p.scope, p.symbol): p for p in Position.objects.all()}
    for key in sorted(set(live_positions) | set(state.positions), key=_scope_order):
        replayed = (state.positions.get(key) or Holding()).values()
        row = live_positions.get(key)
        for name, value in replayed.items():
            live = getattr(row, name) if row is not None else (None if name == "mark_price" else ZERO)
            if live != value:
                yield f"position {_position_label(*key)}.{name}: live {live}, replayed {value}"


def _scope_differences(state: State) -> Iterator[str]:
    """Each scope's open volume, and its executed volume on the firm's trading day."""
    live_scopes = {s.scope: s for s in ScopeState.objects.all()}
    for scope in sorted(set(live_scopes) | set(state.scopes)):
        row, replayed = live_scopes.get(scope), state.scopes.get(scope)
        live_open = row.open_volume if row else ZERO
        replayed_open = replayed.open_volume if replayed else ZERO
        if live_open != replayed_open:
            yield f"scope {scope} open_volume: live {live_open}, replayed {replayed_open}"
        live_day, replayed_day = day_volume(row, state.trading_day), day_volume(replayed, state.trading_day)
        if live_day != replayed_day:
            day = state.trading_day
            yield f"scope {scope} executed_volume on {day}: live {live_day}, replayed {replayed_day}"
