"""Wake-ups (orders.execution.wake_claim): with Redis, a committed batch publishes its execution message only
when no other is waiting for a worker; the waiting one's group takes the orders that came meanwhile. The
claim is real Redis here; the broker is replaced by a list of what would have been published."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import EventType
from orders import breaker, execution, venue
from orders.models import Order, OrderStatus
from tests.execution.conftest import events_of, submit

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def published(settings, redis, monkeypatch) -> list[tuple[Any, dict[str, Any]]]:
    """What the batches (orders.submission) and the workers (orders.execution) publish, in order."""
    settings.EXECUTION_WAKE_SECONDS, settings.EXECUTION_GROUP_MAX = 5.0, 16
    settings.VENUE_LATENCY_MS, settings.VENUE_MAX_SLIPPAGE, settings.VENUE_SCRIPT = 0, "0", ""
    settings.VENUE_SUCCESS_PROBABILITY = 1.0
    venue.venue.cache_clear()
    sent: list[tuple[Any, dict[str, Any]]] = []

    def record(order_id: Any, correlation_id: Any = None, **kwargs: Any) -> bool:
        sent.append((order_id, kwargs))
        return True

    monkeypatch.setattr("orders.submission.enqueue", record)
    monkeypatch.setattr(execution, "enqueue", record)
    yield sent
    venue.venue.cache_clear()


def statuses(*orders: Any) -> list[str]:
    found = dict(Order.objects.values_list("pk", "status"))
    return [found[order.pk] for order in orders]


def test_batches_when_a_wake_up_is_waiting_then_they_publish_nothing_and_its_group_takes_their_orders(
    trader, published
) -> None:
    first, second, third = (submit(trader, quantity=str(n)) for n in (10, 11, 12))
    assert published == [(first.pk, {"with_ids": [], "wake": True, "attempt": 1})]  # one message, not three

    assert execution.order_execute(order_id=first.pk, wake=True).status == "EXECUTED"

    assert statuses(first, second, third) == [OrderStatus.EXECUTED] * 3
    for joined in (second, third):
        assert events_of(joined, EventType.EXECUTION_STARTED)[0].payload["group_of"] == str(first.pk)
    # the worker released the claim when it took the message: the next batch publishes its own
    fourth = submit(trader, quantity="13")
    assert published[-1] == (fourth.pk, {"with_ids": [], "wake": True, "attempt": 1})


def test_wake_up_when_its_order_went_with_another_group_then_it_takes_the_orders_waiting(trader, published) -> None:
    first, second = submit(trader, quantity="10"), submit(trader, quantity="11")
    # a message of its own (a sweeper's, a redelivery) started the wake-up's order alone meanwhile
    assert [o.pk for o in execution.executions_start(order_id=first.pk, group_max=1)] == [first.pk]

    execution.order_execute(order_id=first.pk, wake=True)

    assert statuses(second) == [OrderStatus.EXECUTED]  # else it would wait a minute for the sweeper
    assert statuses(first) == [OrderStatus.EXECUTING]  # its own message goes on with it


def test_wake_up_when_its_group_is_full_then_it_publishes_the_next_one(trader, settings, published) -> None:
    settings.EXECUTION_GROUP_MAX = 2
    orders = [submit(trader, quantity=str(n)) for n in (10, 11, 12)]
    assert len(published) == 1

    execution.order_execute(order_id=orders[0].pk, wake=True)

    assert statuses(*orders) == [OrderStatus.EXECUTED, OrderStatus.EXECUTED, OrderStatus.APPROVED]
    assert published[1:] == [(orders[1].pk, {"wake": True})]  # more may be waiting: the next wake-up
    execution.order_execute(order_id=orders[1].pk, wake=True)
    assert statuses(*orders) == [OrderStatus.EXECUTED] * 3
    assert len(published) == 2  # a group of one of two: nothing more waits


def test_wake_claim_when_redis_does_not_answer_then_every_batch_publishes(trader, published, monkeypatch) -> None:
    import redis as redis_py

    dead = redis_py.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    monkeypatch.setattr(breaker, "redis_client", lambda: dead)

    first, second = submit(trader, quantity="10"), submit(trader, quantity="11")

    assert published == [
        (first.pk, {"with_ids": [], "wake": True, "attempt": 1}),
        (second.pk, {"with_ids": [], "wake": True, "attempt": 1}),
    ]


def test_wake_claim_when_switched_off_then_every_batch_publishes(trader, settings, published) -> None:
    settings.EXECUTION_WAKE_SECONDS = 0
    first, second = submit(trader, quantity="10"), submit(trader, quantity="11")
    assert [order_id for order_id, _ in published] == [first.pk, second.pk]
