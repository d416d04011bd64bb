"""The re-check of orders resting at the venue as one pass per interval (orders.execution._recheck_pass): with
Redis, the message that holds the interval's claim reads every resting order without a lock; those the market
cannot fill cost no lock, no row version, no event and no venue call, and one message queues the next pass.
The claim and the database are real; the broker is replaced by a list of what would have been published."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D  # noqa: N817
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import Event, EventType
from orders import execution, venue
from orders.models import Order, OrderStatus
from tests.execution.conftest import Market, as_venue, events_of, submit
from tests.support.market import price

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# An interval long enough that a busy machine never lets the claim (0.8 of it) lapse within a test's steps.
INTERVAL = 20.0
LATER = {"countdown": INTERVAL, "with_ids": [], "recheck": True}  # the next pass, an interval from now


@pytest.fixture
def queued(settings, redis, tmp_path, monkeypatch) -> list[tuple[Any, dict[str, Any]]]:
    settings.VAR_DIR = str(tmp_path)
    settings.VENUE_LATENCY_MS, settings.VENUE_MAX_SLIPPAGE, settings.VENUE_SCRIPT = 0, "0.01", ""
    settings.VENUE_SUCCESS_PROBABILITY, settings.VENUE_RECHECK_SECONDS = 1.0, INTERVAL
    venue.venue.cache_clear()
    sent: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr("orders.submission.enqueue", lambda *a, **k: True)
    monkeypatch.setattr(execution, "enqueue", lambda order_id, corr=None, **kw: sent.append((order_id, kw)) or True)
    yield sent
    venue.venue.cache_clear()


class Reaching(Market):
    """The venue boundary, answering like the simulated venue which of its resting orders the market reaches."""

    def fillable(self, orders: Any) -> set[str]:
        return {order.order_id for order in orders if order.price >= self.ask}


@pytest.fixture
def reaching(settings, monkeypatch) -> Reaching:
    """The venue boundary for groups of up to four, its ask at 150."""
    return as_venue(Reaching("150"), settings, monkeypatch)


def row_version(order: Any) -> tuple[str, str]:
    """The order row's xmin and xmax: an UPDATE makes a new version, a row lock marks the version's xmax."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text, xmax::text FROM orders_order WHERE id = %s", [order.pk])
        return cursor.fetchone()


def due(*orders: Any) -> None:
    """The orders rested long enough ago for their check to be due."""
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(updated_at=timezone.now() - dt.timedelta(seconds=60))


def lapse(redis: Any) -> None:
    """The interval's claim lapses (as it does after RECHECK_CLAIM_SHARE of VENUE_RECHECK_SECONDS)."""
    redis.delete(execution._recheck_key())


def test_a_pass_over_orders_the_market_cannot_fill_locks_writes_and_records_nothing(trader, queued, redis) -> None:
    price("AAPL", "148")
    order = submit(trader, price="140")
    assert execution.order_execute(order_id=order.pk).status == "RESTING"
    due(order)
    sim = venue.venue()
    calls, trail, version = sim.memory.calls(), Event.objects.count(), row_version(order)
    updated_at = Order.objects.get(pk=order.pk).updated_at
    queued.clear()

    assert execution.order_execute(order_id=order.pk, recheck=True).status == "SKIPPED"

    assert (row_version(order), Order.objects.get(pk=order.pk).updated_at) == (version, updated_at)
    assert (sim.memory.calls(), Event.objects.count()) == (calls, trail)
    assert queued == [(order.pk, LATER)]  # the next pass
    # another message within the interval (its group's, the sweeper's) finds the claim held: dropped
    assert execution.order_execute(order_id=order.pk, recheck=True).status == "SKIPPED"
    assert queued == [(order.pk, LATER)] and row_version(order) == version

    lapse(redis)
    price("AAPL", "139.50")
    assert execution.order_execute(order_id=order.pk, recheck=True).status == "EXECUTED"
    assert sim.memory.calls() == calls + 1


def test_a_pass_sends_what_the_market_reaches_in_groups_and_queues_the_rest_of_it_at_once(
    trader, queued, reaching, settings
) -> None:
    low, *high = (submit(trader, price=limit) for limit in ("139", "141", "142", "143"))
    assert execution.order_execute(order_id=low.pk, with_ids=[o.pk for o in high]).status == "RESTING"
    due(low, *high)
    queued.clear()
    reaching.ask, reaching.calls, settings.EXECUTION_GROUP_MAX = D("141"), [], 2

    # asked for the one the market cannot fill: the pass is about every resting order
    execution.order_execute(order_id=low.pk, recheck=True)

    status = dict(Order.objects.values_list("pk", "status"))
    executed = [o for o in high if status[o.pk] == OrderStatus.EXECUTED]
    (left,) = [o for o in high if status[o.pk] == OrderStatus.APPROVED]
    assert len(executed) == 2 and sorted(reaching.calls) == sorted(str(o.pk) for o in executed)
    assert status[low.pk] == OrderStatus.APPROVED
    # the third it may fill at once, by a plain message (a re-check would find the claim held); the next pass
    assert queued == [(left.pk, {"countdown": 0, "with_ids": []}), (low.pk, LATER)]
    assert execution.order_execute(order_id=left.pk).status == "EXECUTED"
    assert len(events_of(low, EventType.EXECUTION_STARTED)) == 1


def test_an_order_resting_since_the_pass_began_keeps_the_passes_going_when_the_others_fill(
    trader, queued, reaching
) -> None:
    first, second = submit(trader, price="141"), submit(trader, price="139")
    assert execution.order_execute(order_id=first.pk).status == "RESTING"
    assert execution.order_execute(order_id=second.pk).status == "RESTING"
    due(first)  # the second rested a moment ago: not due yet
    queued.clear()
    reaching.ask = D("139")  # both could fill; only the first is due

    assert execution.order_execute(order_id=first.pk, recheck=True).status == "EXECUTED"

    assert Order.objects.get(pk=second.pk).status == OrderStatus.APPROVED
    # its own group's message will find the claim held: this pass queues the next for it
    assert queued == [(second.pk, LATER)]


def test_the_sweeper_leaves_resting_orders_to_their_passes_and_queues_one_should_the_chain_be_lost(
    trader, queued, reaching, settings
) -> None:
    resting = submit(trader, price="140")
    assert execution.order_execute(order_id=resting.pk).status == "RESTING"
    lost = submit(trader, price="141")  # its message never came
    stuck = timezone.now() - dt.timedelta(seconds=settings.ORDER_STUCK_AFTER_SECONDS + 5)
    Order.objects.update(updated_at=stuck)
    queued.clear()

    assert execution.orders_sweep() == [lost.pk]

    assert not events_of(resting, EventType.ORDER_REQUEUED)
    assert (resting.pk, {"countdown": 0, "recheck": True}) in queued
    assert Order.objects.get(pk=resting.pk).updated_at == stuck  # not restarted: its checks are not recorded


def test_when_more_rest_than_a_pass_reads_each_pass_records_its_checks_so_the_next_reads_the_others(
    trader, queued, reaching, redis, monkeypatch
) -> None:
    monkeypatch.setattr(execution, "RECHECK_READ", 1)
    first, second = submit(trader, price="140"), submit(trader, price="141")
    assert execution.order_execute(order_id=first.pk, with_ids=[second.pk]).status == "RESTING"
    due(second)  # the older check: read first
    due(first)
    queued.clear()
    reaching.calls = []

    execution.order_execute(order_id=first.pk, recheck=True)
    lapse(redis)
    execution.order_execute(order_id=first.pk, recheck=True)

    assert [order_id for order_id, _ in queued] == [second.pk, first.pk]  # each pass read, and set aside, another
    assert reaching.calls == [] and set(Order.objects.values_list("status", flat=True)) == {OrderStatus.APPROVED}
