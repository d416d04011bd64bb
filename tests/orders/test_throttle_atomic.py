"""The order submission throttle under concurrency (core/throttling.py, orders.apis.OrderSubmitThrottle).

The per-user sliding window is trimmed, counted and added to in one atomic Redis script: concurrent requests
of one user never get more than the rate through (DRF's cache-backed history, read then written, lets several
concurrent requests count the same history). The window slides: once it has passed, requests pass again.
"""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from rest_framework.test import APIClient

from core.throttling import SlidingWindowUserThrottle
from orders import apis as order_apis
from orders.models import Order

pytestmark = [pytest.mark.redis]

WAIT = 60  # seconds: the bound of every wait on another thread
REQUESTS, RATE = 20, 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_throttle_when_one_trader_sends_many_requests_at_once_then_exactly_the_rate_passes(
    trader, client_for, monkeypatch, _purge_queue
) -> None:
    token = client_for(trader).tokens["access_token"]  # one login: the requests differ only in their order
    monkeypatch.setattr(order_apis.OrderSubmitThrottle, "THROTTLE_RATES", {"orders": f"{RATE}/min"})
    barrier = threading.Barrier(REQUESTS)
    answers: list[Any] = []
    errors: list[BaseException] = []

    def post(n: int) -> None:
        from django.db import connection

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        body = {"symbol": "THR", "side": "BUY", "quantity": 1, "price": 10 + n, "client_order_id": f"t-{n}"}
        try:
            barrier.wait(timeout=WAIT)
            answers.append(client.post("/api/v1/orders", body, format="json"))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT)
    assert not any(thread.is_alive() for thread in threads), "a request never answered"
    assert not errors, errors

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] * RATE + [429] * (REQUESTS - RATE), codes
    for answer in answers:
        if answer.status_code == 429:
            assert 0 < int(answer["Retry-After"]) <= 60
            assert answer.json()["code"] == "throttled"
        else:
            assert answer.json()["status"] == "APPROVED"
    assert Order.objects.filter(user=trader).count() == RATE  # nothing written for a throttled request


class _TwoPerSecond(SlidingWindowUserThrottle):
    scope = "sliding-test"
    THROTTLE_RATES = {"sliding-test": "2/s"}


def test_sliding_window_when_the_window_has_passed_then_requests_are_allowed_again() -> None:
    # A user of its own (no database needed: the throttle reads only user.pk), so no other test shares the key.
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=uuid.uuid4().hex))
    throttle = _TwoPerSecond()

    assert throttle.allow_request(request, None)
    assert throttle.allow_request(request, None)
    assert not throttle.allow_request(request, None)
    assert 0 < throttle.wait() <= 1
    assert not _TwoPerSecond().allow_request(request, None)  # the count is in Redis, not in the instance
    other = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=uuid.uuid4().hex))
    assert _TwoPerSecond().allow_request(other, None)  # per user

    time.sleep(1.1)  # the window (1 s) has passed: the first two requests left it
    assert throttle.allow_request(request, None)
    assert throttle.wait() == 0
    assert throttle.allow_request(request, None)
    assert not throttle.allow_request(request, None)


def test_redis_clients_when_they_read_replies_then_in_c_with_hiredis():
    """redis-py parses replies with hiredis whenever it is installed (requirements.txt): the throttle's client
    and the broker's, every request and every message. Its Python RESP parser cost a fifth more CPU a command."""
    from redis._parsers import _HiredisParser

    from core import throttling
    from itirp.celery import app

    client = throttling._script().registered_client
    connection = client.connection_pool.get_connection()
    try:
        assert isinstance(connection._parser, _HiredisParser)
        assert connection.send_command("PING") is None and connection.read_response() in (b"PONG", "PONG", True)
    finally:
        client.connection_pool.release(connection)
    with app.connection_for_write() as broker:
        pool = broker.default_channel.client.connection_pool
        connection = pool.get_connection()
        try:
            assert isinstance(connection._parser, _HiredisParser)
        finally:
            pool.release(connection)
