"""Publishing execution messages while the broker is down (orders.publish), the worker's requeue of waiting
orders on (re)connect, and the kombu closed-transport guard (itirp.celery). Redis is a throw-away
redis-server of the test's own, killed and restarted by PID; the machine's Redis is never touched.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from orders.publish import Message, Publisher
from tests.support.ports import port_from_env

PORT = port_from_env("PUBLISH_TEST_REDIS_PORT")
URL = f"redis://127.0.0.1:{PORT}/0"

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]


class ThrowAwayRedis:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=PORT, socket_timeout=0.5).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        pytest.fail("throw-away redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.proc = None

    def queued(self) -> list[dict]:
        import redis

        return [json.loads(raw) for raw in redis.Redis(port=PORT).lrange("celery", 0, -1)]


@pytest.fixture
def broker() -> Iterator[ThrowAwayRedis]:
    server = ThrowAwayRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _message(n: int) -> Message:
    order_id = str(uuid.UUID(int=n))
    return Message(key=order_id, args=[order_id], kwargs={"correlation_id": None, "resume": False})


def _timed(publisher: Publisher, message: Message) -> tuple[bool, float]:
    started = time.perf_counter()
    sent = publisher.publish(message)
    return sent, (time.perf_counter() - started) * 1000


def test_publish_when_broker_killed_then_never_waits_and_parked_messages_are_queued_when_it_returns(broker, caplog):
    publisher = Publisher(url=URL)
    assert _timed(publisher, _message(0))[0] is True  # warm: connection open, as in a running web process
    broker.kill()
    caplog.set_level(logging.WARNING, logger="itirp.execution")
    results = [_timed(publisher, _message(n)) for n in range(1, 101)]
    assert not any(sent for sent, _ in results)
    slowest = max(ms for _, ms in results)
    # Bound: 50 ms (issue 20, item 3). Measured here: the first, which finds the broker gone, ~2-6 ms; the
    # others do not touch the network (~0.01 ms).
    assert slowest < 50, f"a publish waited {slowest:.1f} ms on a dead broker"
    assert publisher.down and publisher.parked() == 100
    outage_lines = [r for r in caplog.records if "broker unavailable" in r.getMessage()]
    assert len(outage_lines) == 1, "logged once per outage, not per publish"

    broker.start()
    returned = time.monotonic()
    while publisher.parked() and time.monotonic() - returned < 5:
        time.sleep(0.02)
    relayed_after = time.monotonic() - returned
    assert publisher.parked() == 0, "parked messages not relayed within 5 s of the broker's return"
    assert not publisher.down
    queued = {m["headers"]["argsrepr"] for m in broker.queued()}
    assert queued == {repr([str(uuid.UUID(int=n))]) for n in range(1, 101)}
    assert relayed_after < 2.0, relayed_after
    assert publisher.publish(_message(500)) is True  # publishing goes straight through again


def test_publish_when_broker_answers_then_sent_at_once_nothing_parked(broker):
    publisher = Publisher(url=URL)
    assert [publisher.publish(_message(n)) for n in range(3)] == [True, True, True]
    assert publisher.parked() == 0 and not publisher.down
    assert len(broker.queued()) == 3


def test_publish_when_messages_follow_each_other_then_no_redis_client_made_for_each_one(broker, monkeypatch):
    """kombu made a redis client (170 response callbacks copied) for every publish; a channel keeps one, before
    and after an outage (itirp.celery)."""
    import redis

    import itirp.celery  # noqa: F401 - applies the patch, as every process does on startup

    made = []
    original = redis.Redis.__init__

    def counting(self, *args, **kwargs):
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting)
    publisher = Publisher(url=URL)
    assert publisher.publish(_message(0))  # the connection and its channel made
    warm = len(made)
    assert all(publisher.publish(_message(n)) for n in range(1, 21))
    assert len(made) == warm  # no client per publish
    assert len(broker.queued()) == 21
    broker.kill()
    assert publisher.publish(_message(5)) is False  # parked, sent by the relay when the broker is back
    broker.start()
    deadline = time.monotonic() + 5
    while publisher.parked() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert publisher.parked() == 0
    assert publisher.publish(_message(6))  # a new connection, channel and client after the outage
    again = len(made)
    assert all(publisher.publish(_message(n)) for n in range(7, 27))
    assert len(made) == again
    assert {m["headers"]["argsrepr"] for m in broker.queued()} == {repr([str(uuid.UUID(int=n))]) for n in range(5, 27)}


def test_publish_when_the_same_order_is_parked_twice_then_one_message_the_newest(broker):
    publisher = Publisher(url=URL, interval=60)  # the relay stays asleep for this test
    broker.kill()
    publisher.publish(_message(7))
    newer = Message(key=_message(7).key, args=_message(7).args, kwargs={"correlation_id": None, "resume": True})
    publisher.publish(newer)
    assert publisher.parked() == 1
    assert publisher._parked[newer.key] is newer


def test_kombu_channel_whose_transport_was_closed_raises_a_connection_error_not_attribute_error(broker):
    """The worker's crash (issue 20, item 2) in one step: Connection.collect() leaves the transport without its
    client; closing the task channel then restores its unacked message, which used to build a new pool from
    `transport.client.hostname`. The guard turns that into a connection error, which teardown ignores."""
    from kombu import Connection, Queue
    from kombu.common import ignore_errors

    import itirp.celery  # noqa: F401 - applies the guard, as every process does on startup

    conn = Connection(URL)
    queue = Queue("guard-test")
    with conn.Producer() as producer:
        producer.publish({"n": 1}, routing_key="guard-test", declare=[queue])
    received: list = []
    channel = conn.channel()
    consumer = conn.Consumer([queue], channel=channel, callbacks=[lambda body, message: received.append(message)])
    consumer.consume()
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        conn.drain_events(timeout=1)
    assert len(channel.qos._delivered) == 1  # delivered, not acknowledged
    broker.kill()
    channel._disconnect_pools()
    conn._do_close_transport()  # what collect() leaves behind
    with pytest.raises(conn.connection_errors):
        channel.close()
    ignore_errors(conn, channel.close)  # Celery's teardown: must not raise


@pytest.mark.django_db(transaction=True)
def test_requeue_waiting_when_worker_connects_then_every_approved_order_requeued_once(trader, redis):
    from audit.models import EventType
    from orders.execution import orders_requeue_waiting
    from orders.models import Order, OrderStatus
    from tests.execution.conftest import events_of, submit

    old, fresh, executing = (submit(trader, quantity=str(n), price="10") for n in (1, 2, 3))
    Order.objects.filter(pk=old.pk).update(updated_at=old.updated_at - timedelta(seconds=5))
    Order.objects.filter(pk=executing.pk).update(
        status=OrderStatus.EXECUTING, updated_at=executing.updated_at - timedelta(seconds=5)
    )
    # Oldest first; the one submitted a moment ago too (its publish may have failed just before the return).
    assert orders_requeue_waiting() == [old.pk, fresh.pk]
    for order in (old, fresh):
        requeued = events_of(order, EventType.ORDER_REQUEUED)
        assert len(requeued) == 1 and requeued[0].payload["status"] == OrderStatus.APPROVED
    assert not events_of(executing, EventType.ORDER_REQUEUED)  # a worker may be at the venue with it
