"""The internal venue run by real Celery worker processes: two workers, each with two processes, match orders
of two traders in one book per instrument at once. One writer per book whatever the number of processes:
afterwards the book is not crossed, every order's quantity is its fills plus what rests or was cancelled,
each trade is two fills, and the replayed trail equals the live tables."""

from __future__ import annotations

import random
from decimal import Decimal as D  # noqa: N817

import pytest
from guardian.shortcuts import assign_perm

from audit import replay
from books.models import Book, Desk
from orders import internal
from orders.models import Fill, InternalTrade, Order, OrderStatus
from orders.submission import OrderRequest, order_submit
from risk.models import Position
from tests.execution.conftest import FAST_VENUE, wait_for
from tests.support.market import price
from tests.support.worker import celery_worker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]

SETTLED = {OrderStatus.EXECUTED, OrderStatus.CANCELLED}


def test_two_workers_match_one_book_with_one_writer_and_the_trail_replays(trader, trader2, redis) -> None:
    book = Book.objects.create(code="OTHER", name="Other", desk=Desk.objects.get(code="EQ"), currency="USD")
    assign_perm("books.trade_book", trader2, book)
    price("AAPL", "100")
    rng = random.Random(16)
    orders = []
    with celery_worker(name="internal-a", **FAST_VENUE), celery_worker(name="internal-b", **FAST_VENUE):
        for n in range(80):
            buyer = n % 2 == 0
            order, decision = order_submit(
                user=trader if buyer else trader2,
                request=OrderRequest(
                    symbol="AAPL",
                    side="BUY" if buyer else "SELL",
                    quantity=D(rng.randint(1, 9)),
                    price=D("100") + D(rng.randint(-3, 3)) / 10,
                    venue="INTERNAL",
                    time_in_force=rng.choice(["GTC", "GTC", "IOC"]),
                    client_order_id=f"w-{n}",
                    book=None if buyer else "OTHER",
                ),
            )
            assert decision.approved, decision.message
            orders.append(order.pk)

        def settled() -> bool:
            rows = Order.objects.filter(pk__in=orders)
            # every order has been to the venue: filled, cancelled (IOC), or resting in the book
            return all(o.status in SETTLED or o.resting_seq is not None for o in rows)

        wait_for(settled, timeout=90, what="every internal order matched, rested or cancelled")

    depth = internal.depth("AAPL", levels=100)
    if depth["bids"] and depth["asks"]:
        assert depth["bids"][0]["price"] < depth["asks"][0]["price"]  # never a crossed book
    assert InternalTrade.objects.exists()
    assert Fill.objects.count() == 2 * InternalTrade.objects.count()
    for order in Order.objects.filter(pk__in=orders):
        filled = sum((f.quantity for f in order.fills.all()), D(0))
        assert filled == (order.executed_quantity or 0)
        resting = order.leaves_quantity if order.status in (OrderStatus.APPROVED, OrderStatus.PARTIALLY_FILLED) else 0
        cancelled = order.quantity - filled - resting
        assert cancelled >= 0 and (cancelled == 0 or order.status == OrderStatus.CANCELLED)
    assert Position.objects.get(scope="firm", symbol="AAPL").quantity == 0  # the firm traded with itself
    book_qty = Position.objects.get(scope="book:MAIN", symbol="AAPL").quantity
    assert book_qty == -Position.objects.get(scope="book:OTHER", symbol="AAPL").quantity
    state = replay.rebuild()
    assert state.anomalies == [] and replay.differences(state) == []
    assert internal.replay_differences("AAPL") == []  # the trail's messages through the pure core: the same trades
