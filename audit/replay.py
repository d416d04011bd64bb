"""Replay: rebuild positions, daily volume, open reservations and order statuses from the events alone,
and compare them with the live tables.

The rebuild applies the same arithmetic as the live services (risk.positions.apply_fill for positions,
notional = quantity x order price for reservations and daily volume) and rounds where the database
rounds (NUMERIC(38, 8) keeps 8 places, half away from zero), so a faithful trail gives the same digits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from audit.models import Event, EventType
from orders.models import Order
from risk.models import FIRM_STATE_ID, Position, RiskState
from risk.positions import PositionState, apply_fill

PLACES = Decimal("0.00000001")
ZERO = Decimal(0)


def _db(value: Decimal) -> Decimal:
    """What a NUMERIC(…, 8) column stores."""
    return value.quantize(PLACES, ROUND_HALF_UP)


@dataclass
class Book:
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
class ReplayedOrder:
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    status: str = "RISK_CHECK"
    reserved: bool = False


@dataclass
class State:
    books: dict[str, Book] = field(default_factory=dict)
    orders: dict[uuid.UUID, ReplayedOrder] = field(default_factory=dict)
    open_volume: Decimal = ZERO
    trading_day: dt.date | None = None
    executed_volume: Decimal = ZERO
    anomalies: list[str] = field(default_factory=list)
    events: int = 0

    def book(self, symbol: str) -> Book:
        return self.books.setdefault(symbol, Book())

    def _reserve(self, order: ReplayedOrder, sign: int) -> None:
        book = self.book(order.symbol)
        quantity, notional = sign * order.quantity, sign * order.quantity * order.price
        if order.side == "BUY":
            book.open_buy_quantity = _db(book.open_buy_quantity + quantity)
            book.open_buy_notional = _db(book.open_buy_notional + notional)
        else:
            book.open_sell_quantity = _db(book.open_sell_quantity + quantity)
            book.open_sell_notional = _db(book.open_sell_notional + notional)
        self.open_volume = _db(self.open_volume + notional)
        order.reserved = sign > 0

    def _release(self, order: ReplayedOrder, sequence: int) -> None:
        if not order.reserved:
            self.anomalies.append(f"#{sequence}: releases a reservation the order does not hold")
            return
        self._reserve(order, -1)

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
            )
            return
        order = self.orders.get(order_id)
        if order is None:
            self.anomalies.append(f"#{seq}: {kind} for order {order_id} that was never created")
            return
        if kind == EventType.RISK_CHECK_PASSED:
            order.status = "APPROVED"
            self._reserve(order, +1)
        elif kind == EventType.RISK_CHECK_FAILED:
            order.status = "REJECTED"
        elif kind == EventType.EXECUTION_STARTED:
            order.status = "EXECUTING"
        elif kind == EventType.EXECUTION_ATTEMPT_FAILED:
            if payload.get("will_retry"):
                order.status = "APPROVED"
        elif kind in (EventType.ORDER_CANCELLED, EventType.EXECUTION_FAILED):
            order.status = "CANCELLED" if kind == EventType.ORDER_CANCELLED else "FAILED"
            self._release(order, seq)
        elif kind == EventType.EXECUTION_COMPLETED:
            self._fill(order, event, payload)

    def _fill(self, order: ReplayedOrder, event: Mapping[str, Any], payload: dict[str, Any]) -> None:
        order.status = "EXECUTED"
        self._release(order, event["sequence"])
        quantity, price = Decimal(str(payload["fill_quantity"])), Decimal(str(payload["fill_price"]))
        book = self.book(order.symbol)
        book.position = apply_fill(book.position, side=order.side, quantity=quantity, price=price)
        book.mark_price = price
        if self.trading_day is None:
            # The first fill ever starts the first day without a reset event.
            self.trading_day = event["timestamp"].astimezone(dt.UTC).date()
        self.executed_volume = _db(self.executed_volume + quantity * order.price)


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


def differences(state: State) -> list[str]:
    """Every way the live tables differ from the replayed state (empty: they agree)."""
    diffs = list(state.anomalies)
    live_positions = {p.symbol: p for p in Position.objects.all()}
    for symbol in sorted(set(live_positions) | set(state.books)):
        replayed = (state.books.get(symbol) or Book()).values()
        row = live_positions.get(symbol)
        for name, value in replayed.items():
            live = getattr(row, name) if row is not None else (None if name == "mark_price" else ZERO)
            if live != value:
                diffs.append(f"position {symbol}.{name}: live {live}, replayed {value}")
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
    live_orders = dict(Order.objects.values_list("pk", "status"))
    for order_id in sorted(set(live_orders) | set(state.orders), key=str):
        live_status = live_orders.get(order_id)
        replayed_order = state.orders.get(order_id)
        replayed_status = replayed_order.status if replayed_order else None
        if live_status != replayed_status:
            diffs.append(f"order {order_id} status: live {live_status}, replayed {replayed_status}")
    return diffs
