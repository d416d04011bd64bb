"""A limit order the market has not reached rests, checked again, until it fills or its day ends (issue 15)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D  # noqa: N817

import pytest
from django.utils import timezone

from audit.models import EventType
from orders import execution, venue
from orders.models import Order, OrderStatus
from risk.models import Position, RiskState
from tests.execution.conftest import events_of, submit
from tests.support.market import price

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued(settings, tmp_path, monkeypatch):
    settings.REDIS_URL, settings.VAR_DIR = "", str(tmp_path)
    settings.VENUE_LATENCY_MS, settings.VENUE_MAX_SLIPPAGE, settings.VENUE_SCRIPT = 0, "0.01", ""
    settings.VENUE_SUCCESS_PROBABILITY, settings.VENUE_RECHECK_SECONDS = 1.0, 2.0
    venue.venue.cache_clear()
    sent: list[tuple] = []
    monkeypatch.setattr("orders.submission.enqueue", lambda *a, **k: True)
    monkeypatch.setattr(execution, "enqueue", lambda order_id, corr=None, **kw: sent.append((order_id, kw)) or True)
    yield sent
    venue.venue.cache_clear()


def test_a_buy_below_the_market_rests_then_fills_at_or_under_its_limit_when_the_market_comes(trader, queued) -> None:
    price("AAPL", "148")
    order = submit(trader, price="140")
    first = execution.order_execute(order_id=order.pk)
    assert first.status == "RESTING" and queued == [(order.pk, {"countdown": 2.0})]
    order.refresh_from_db()
    assert (order.status, order.retry_count) == (OrderStatus.APPROVED, 0)  # resting is no failed attempt
    assert execution.order_execute(order_id=order.pk).status == "RESTING"
    (resting,) = events_of(order, EventType.ORDER_RESTING)  # recorded once, however often it is checked
    assert resting.payload["market"] == "148.0000000000" and resting.payload["limit"] == "140.00000000"

    price("AAPL", "139.50")
    assert execution.order_execute(order_id=order.pk).status == "EXECUTED"
    order.refresh_from_db()
    assert order.status == OrderStatus.EXECUTED and D("139.50") <= order.executed_price <= D("140")


def test_a_resting_order_can_be_cancelled_like_any_open_order(trader) -> None:
    from orders.services import order_cancel

    price("AAPL", "148")
    order = submit(trader, price="140")
    execution.order_execute(order_id=order.pk)
    assert order_cancel(actor=trader, order_id=order.pk, reason="no fill").status == OrderStatus.CANCELLED
    assert Position.objects.get(scope="firm", symbol="AAPL").open_buy_quantity == 0


def test_day_orders_of_an_earlier_utc_day_expire_and_give_their_reservation_back(trader) -> None:
    price("AAPL", "148")
    old = submit(trader, price="140")
    today = submit(trader, price="141")
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=1))
    assert execution.orders_expire() == [old.pk]
    assert Order.objects.get(pk=old.pk).status == OrderStatus.EXPIRED
    assert Order.objects.get(pk=today.pk).status == OrderStatus.APPROVED
    (expired,) = events_of(old, EventType.ORDER_EXPIRED)
    assert expired.payload["time_in_force"] == "DAY"
    assert Position.objects.get(scope="firm", symbol="AAPL").open_buy_quantity == D(10)  # today's order only
    assert RiskState.objects.get().open_volume == D(10) * D(148)  # valued at the market, the worse price
    assert execution.orders_expire() == []
