"""The internal venue INTERNAL: a price-time-priority order book per instrument (API.md, "Internal venue").

The matching is orders.matching (pure, deterministic); this module is its one writer and its memory:

- **One writer per book, whatever the number of processes**: every change to a book (an order arriving from
  its execution task, an amend, a cancel, a halt, an expiry) runs in a transaction that holds the risk lock
  (risk.store.lock), which every decision and every fill needs anyway: the fills of a match move positions,
  P&L, volumes and reservations of both orders under that lock. So a match is serialised with every other
  change of the same limits, and no second lock order exists. DESIGN-NOTES.md says why this and not a
  consumer per instrument partition, with the figures.
- **The book is rows**: a resting order is an open order with `resting_seq` set (its time priority); the
  book of a symbol is rebuilt from them (order_internal_book_idx) for each match, so a crash loses nothing
  and needs no recovery. `InternalBook.next_seq` hands out the time priority.
- **Trades** are InternalTrade rows, each booked as one fill of each order (venue trade ids INT-<id>-B and
  INT-<id>-S); after the commit the trade price and the top of the book feed the market data
  (market.prices.record, source INTERNAL).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import EventType
from audit.services import event_record
from orders.execution import ZERO, fill_record, order_end
from orders.matching import Incoming, OrderBook, Resting, Result
from orders.models import InternalBook, InternalTrade, Order, OrderStatus, OrderType, VenueCode
from risk import store
from risk.models import RiskState

logger = logging.getLogger("itirp.venue.internal")

RESTING_STATUSES = (OrderStatus.APPROVED, OrderStatus.PARTIALLY_FILLED)
CANCEL_REASONS = {
    "IOC": "IOC: the rest could not trade at once",
    "FOK": "FOK: could not fill entirely at once",
    "MARKET_NO_LIQUIDITY": "Market order: no more liquidity within its protection price",
    "SELF_TRADE": "Self-trade prevention: the rest would have traded against the same trader's or book's order",
}


def _book_row(symbol: str) -> InternalBook:
    """The symbol's book row, locked (created on first use). Caller holds the risk lock."""
    InternalBook.objects.get_or_create(symbol=symbol)
    return InternalBook.objects.select_for_update().get(symbol=symbol)


def _resting(symbol: str, *, exclude: Any = None) -> list[Resting]:
    """The symbol's book as the matching needs it, read from the resting rows (plain values: no model objects
    and no row locks; every writer of these rows holds the risk lock, as the caller does)."""
    qs = Order.objects.filter(symbol=symbol, resting_seq__isnull=False, status__in=RESTING_STATUSES)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    rows = qs.values_list("id", "side", "price", "leaves_quantity", "user_id", "book_id", "resting_seq")
    return [
        Resting(str(pk), side, price, leaves, str(user_id), str(book_id), seq or 0)
        for pk, side, price, leaves, user_id, book_id, seq in rows
    ]


def _resting_of(order: Order) -> Resting:
    assert order.resting_seq is not None
    return Resting(
        order_id=str(order.pk),
        side=order.side,
        price=order.price,
        quantity=order.leaves_quantity,
        owner=str(order.user_id),
        book=str(order.book_id),
        seq=order.resting_seq,
    )


def _traded(result: Result) -> dict[str, Order]:
    """The resting orders the result trades against, locked (the only rows of the book that change)."""
    ids = sorted({t.resting_id for t in result.trades})
    if not ids:
        return {}
    rows = Order.objects.select_related("user").select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk")
    return {str(o.pk): o for o in rows}


def order_match(*, order_id: Any) -> str:
    """An order sent to the internal venue (its execution task; the order is EXECUTING): match it against the
    book, book the trades, rest or cancel what is left. Answers the order's status after it."""
    with transaction.atomic():
        state = store.lock()
        order = Order.objects.select_related("user").select_for_update(of=("self",)).filter(pk=order_id).first()
        if order is None or order.status != OrderStatus.EXECUTING:
            return "SKIPPED"
        row = _book_row(order.symbol)
        book = OrderBook(order.symbol, _resting(order.symbol, exclude=order.pk))
        seq = row.next_seq
        result = book.submit(
            Incoming(
                order_id=str(order.pk),
                side=order.side,
                quantity=order.leaves_quantity,
                price=None if order.order_type == OrderType.MARKET else order.price,
                owner=str(order.user_id),
                book=str(order.book_id),
                tif=order.time_in_force,
                seq=seq,
                protection=order.protection_price,
            )
        )
        apply_result(
            state=state,
            order=order,
            result=result,
            priority=seq if result.rested else None,
            row=row,
            book=book,
        )
    return order.status


def apply_result(
    *,
    state: RiskState,
    order: Order,
    result: Result,
    priority: int | None,
    row: InternalBook,
    book: OrderBook,
    now: Any = None,
    announce: bool = True,
) -> None:
    """Write what the matching decided for `order` (the aggressor): trades as rows and fills of both sides,
    then the aggressor resting with time priority `priority` (ORDER_RESTING unless `announce` is off: an
    amended order already rests) or its rest cancelled. Caller holds the risk lock, the book's row and every
    order's row (the traded resting orders are locked here)."""
    now = now or timezone.now()
    by_id = _traded(result)
    trades = InternalTrade.objects.bulk_create(
        [
            InternalTrade(
                symbol=order.symbol,
                price=t.price,
                quantity=t.quantity,
                aggressor_id=order.pk,
                resting_id=by_id[t.resting_id].pk,
                aggressor_side=t.side,
                created_at=now,
            )
            for t in result.trades
        ]
    )
    if trades and trades[0].pk is None:  # a backend that does not return ids on bulk insert
        trades = list(InternalTrade.objects.filter(aggressor_id=order.pk).order_by("-id")[: len(trades)])[::-1]
    factor = store.price_factor(order.symbol) if trades else ZERO
    for trade, matched in zip(trades, result.trades, strict=True):
        other = by_id[matched.resting_id]
        for party in (order, other):
            fill_record(
                state=state,
                order=party,
                quantity=matched.quantity,
                price=matched.price,
                venue=VenueCode.INTERNAL,
                venue_execution_id=f"INT-{trade.pk}-{party.side[0]}",
                now=now,
                factor=factor,
            )
    if priority is not None and order.leaves_quantity > 0:
        order.resting_seq = priority
        if priority >= row.next_seq:
            row.next_seq = priority + 1
            row.save(update_fields=["next_seq"])
        if order.status == OrderStatus.EXECUTING:
            order.transition(OrderStatus.APPROVED)
        order.updated_at = now
        order.save(update_fields=["status", "resting_seq", "updated_at"])
    if priority is not None and order.leaves_quantity > 0 and announce:
        event_record(
            event_type=EventType.ORDER_RESTING,
            payload={
                "venue": VenueCode.INTERNAL,
                "limit": order.price,
                "side": order.side,
                "leaves_quantity": order.leaves_quantity,
                "priority": priority,
            },
            order_id=order.pk,
            symbol=order.symbol,
            correlation_id=order.correlation_id,
        )
    elif result.cancelled is not None and order.leaves_quantity > 0:
        reason = CANCEL_REASONS.get(result.cancelled, result.cancelled)
        order_end(
            state=state,
            order=order,
            status=OrderStatus.CANCELLED,
            reason=reason,
            event_type=EventType.ORDER_CANCELLED,
            payload={
                "reason": reason,
                "by": "venue",
                "venue": VenueCode.INTERNAL,
                "code": result.cancelled,
                "leaves_quantity": order.leaves_quantity,
            },
        )
    if trades:
        transaction.on_commit(lambda: _publish(order.symbol, trades[-1].price, book, now))


def book_replace(*, state: RiskState, order: Order, quantity: Decimal, price: Decimal) -> None:
    """Amend an order resting in the internal book to leaves `quantity` at `price` (the caller has checked and
    reserved the new terms; the order still has its old ones): a smaller quantity keeps its time priority, a new price
    or more quantity goes to the back; a new price that crosses the book trades at once. Caller holds the
    risk lock and the order's row."""
    row = _book_row(order.symbol)
    book_with = OrderBook(order.symbol, [*_resting(order.symbol, exclude=order.pk), _resting_of(order)])
    result = book_with.replace(str(order.pk), quantity=quantity, price=price, seq=row.next_seq)
    if result is None:
        return
    kept = next((r for r in book_with.orders() if r.order_id == str(order.pk)), None)
    order.price, order.leaves_quantity = price, quantity
    order.save(update_fields=["price", "leaves_quantity", "updated_at"])
    apply_result(
        state=state,
        order=order,
        result=result,
        priority=kept.seq if kept else None,
        row=row,
        book=book_with,
        announce=False,
    )
    if kept is None:
        order.resting_seq = None
        order.save(update_fields=["resting_seq"])


def _publish(symbol: str, last: Decimal, book: OrderBook, now: Any) -> None:
    """The venue's trade price and top of book as market data (after the commit; never fails the match)."""
    from market.prices import Quote, record

    try:
        record([Quote(symbol, last, now, VenueCode.INTERNAL, book.best_bid(), book.best_ask())])
    except Exception:  # noqa: BLE001 - market data is a by-product of the trade, never a reason to lose it
        logger.exception("internal venue: could not publish the market data of %s", symbol)


def depth(symbol: str, levels: int = 10) -> dict[str, Any]:
    """The book's depth from its rows: bids best first, asks best first; per level price, quantity, orders."""
    rows = (
        Order.objects.filter(symbol=symbol, resting_seq__isnull=False, status__in=RESTING_STATUSES)
        .order_by("resting_seq")
        .values_list("side", "price", "leaves_quantity")
    )
    sides: dict[str, dict[Decimal, list[Any]]] = {"BUY": {}, "SELL": {}}
    for side, price, leaves in rows:
        level = sides[side].setdefault(price, [ZERO, 0])
        level[0] += leaves
        level[1] += 1

    def shaped(side: str, best_first: bool) -> list[dict[str, Any]]:
        prices = sorted(sides[side], reverse=best_first)[:levels]
        return [{"price": p, "quantity": sides[side][p][0], "orders": sides[side][p][1]} for p in prices]

    return {"symbol": symbol, "bids": shaped("BUY", True), "asks": shaped("SELL", False), "timestamp": timezone.now()}


def trades(symbol: str, limit: int = 100) -> list[InternalTrade]:
    return list(InternalTrade.objects.filter(symbol=symbol).order_by("-id")[:limit])


REPLAYED = (
    EventType.ORDER_CREATED,
    EventType.EXECUTION_STARTED,
    EventType.ORDER_PARTIALLY_FILLED,
    EventType.EXECUTION_COMPLETED,
    EventType.ORDER_RESTING,
    EventType.ORDER_CANCELLED,
    EventType.ORDER_EXPIRED,
    EventType.ORDER_AMENDED,
)


def replay_differences(symbol: str) -> list[str]:
    """Check the book by replay: feed the pure matching core the messages the trail records for `symbol`'s
    internal orders, in the trail's order (arrivals, amends, cancels, expiries), and compare the trades it makes
    with the InternalTrade rows and the book it ends with with the resting rows. Empty: they agree (the
    matching is deterministic and its writer never lost or reordered a message)."""
    from audit.models import Event

    rows: dict[Any, Order] = {o.pk: o for o in Order.objects.filter(symbol=symbol, venue=VenueCode.INTERNAL)}
    book = OrderBook(symbol)
    terms: dict[Any, tuple[Decimal, Decimal | None]] = {}
    started: set[Any] = set()
    counter = 0
    replayed: list[tuple[str, str, Decimal, Decimal]] = []
    events = Event.objects.filter(order_id__in=list(rows), event_type__in=REPLAYED).order_by("sequence")
    for event in events.values("order_id", "event_type", "payload").iterator():
        order, kind, payload = rows[event["order_id"]], event["event_type"], event["payload"] or {}
        key = str(order.pk)
        if kind == EventType.ORDER_CREATED:
            market = order.order_type == OrderType.MARKET
            terms[order.pk] = (Decimal(str(payload["quantity"])), None if market else Decimal(str(payload["price"])))
        elif kind == EventType.EXECUTION_STARTED:
            started.add(order.pk)
        elif kind == EventType.ORDER_AMENDED:
            leaves, price = Decimal(str(payload["leaves_quantity"])), Decimal(str(payload["price"]))
            counter += 1
            if key in book:
                result = book.replace(key, quantity=leaves, price=price, seq=counter)
                replayed += (
                    [(t.aggressor_id, t.resting_id, t.price, t.quantity) for t in result.trades] if result else []
                )
            else:
                terms[order.pk] = (leaves, price)
        elif kind in (EventType.ORDER_CANCELLED, EventType.ORDER_EXPIRED) and key in book:
            book.cancel(key)
        elif order.pk in started and kind != EventType.ORDER_EXPIRED:
            # the order's first event of its match: its arrival at the venue
            started.discard(order.pk)
            quantity, limit = terms[order.pk]
            counter += 1
            result = book.submit(
                Incoming(
                    key,
                    order.side,
                    quantity,
                    limit,
                    str(order.user_id),
                    str(order.book_id),
                    order.time_in_force,
                    counter,
                    order.protection_price,
                )
            )
            replayed += [(t.aggressor_id, t.resting_id, t.price, t.quantity) for t in result.trades]
    live = [
        (str(t.aggressor_id), str(t.resting_id), t.price, t.quantity)
        for t in InternalTrade.objects.filter(symbol=symbol).order_by("id")
    ]
    diffs = [
        f"trade {n}: replayed {r}, live {x}" for n, (r, x) in enumerate(zip(replayed, live, strict=False)) if r != x
    ]
    if len(replayed) != len(live):
        diffs.append(f"{len(replayed)} trades replayed, {len(live)} live")
    resting = sorted((r.order_id, r.quantity) for r in _resting(symbol))
    if sorted((r.order_id, r.quantity) for r in book.orders()) != resting:
        diffs.append("the replayed book's resting orders differ from the live rows")
    return diffs
