"""A limit order the market has not reached rests, checked again, until it fills or its day ends (issue 15)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D  # noqa: N817

import pytest
from django.utils import timezone

from audit.models import Event, EventType
from orders import execution, venue
from orders.models import Order, OrderStatus
from risk.models import Position, RiskState
from tests.execution.conftest import Market, as_venue, events_of, submit
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
    assert first.status == "RESTING" and queued == [(order.pk, {"countdown": 2.0, "with_ids": [], "recheck": True})]
    order.refresh_from_db()
    assert (order.status, order.retry_count) == (OrderStatus.APPROVED, 0)  # resting is no failed attempt
    assert execution.order_execute(order_id=order.pk).status == "RESTING"
    (resting,) = events_of(order, EventType.ORDER_RESTING)  # recorded once, however often it is checked
    assert resting.payload["market"] == "148.0000000000" and resting.payload["limit"] == "140.00000000"

    price("AAPL", "139.50")
    assert execution.order_execute(order_id=order.pk).status == "EXECUTED"
    order.refresh_from_db()
    assert order.status == OrderStatus.EXECUTED and D("139.50") <= order.executed_price <= D("140")


def test_a_recheck_message_for_an_order_checked_since_is_skipped_and_a_due_one_runs(trader, queued) -> None:
    price("AAPL", "148")
    order = submit(trader, price="140")
    assert execution.order_execute(order_id=order.pk).status == "RESTING"
    # its re-check, taken before half the interval has passed: the order was checked since (with a group)
    assert execution.order_execute(order_id=order.pk, recheck=True).status == "SKIPPED"
    assert len(events_of(order, EventType.EXECUTION_STARTED)) == 1
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - dt.timedelta(seconds=2))
    price("AAPL", "139.50")
    assert execution.order_execute(order_id=order.pk, recheck=True).status == "EXECUTED"


@pytest.fixture
def market(settings, monkeypatch) -> Market:
    """The venue boundary for groups of up to four, its ask at 148."""
    return as_venue(Market("148"), settings, monkeypatch)


def test_orders_resting_together_are_rechecked_together_by_one_message(trader, queued, market) -> None:
    first, second, third = (submit(trader, price=limit) for limit in ("140", "141", "142"))
    assert execution.order_execute(order_id=first.pk, with_ids=[second.pk, third.pk]).status == "RESTING"
    (message,) = queued  # one message re-checks the three, not one each
    order_id, kwargs = message
    assert (order_id, kwargs["countdown"], kwargs["recheck"]) == (first.pk, 2.0, True)
    assert sorted(kwargs["with_ids"]) == sorted([second.pk, third.pk])
    assert all(len(events_of(o, EventType.ORDER_RESTING)) == 1 for o in (first, second, third))
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.APPROVED}

    # the first was amended meanwhile (its own check goes with the amend): the other two still go together
    Order.objects.exclude(pk=first.pk).update(updated_at=timezone.now() - dt.timedelta(seconds=2))
    market.ask = D("139.50")
    execution.order_execute(order_id=first.pk, with_ids=[second.pk, third.pk], recheck=True)
    assert dict(Order.objects.values_list("pk", "status")) == {
        first.pk: OrderStatus.APPROVED,
        second.pk: OrderStatus.EXECUTED,
        third.pk: OrderStatus.EXECUTED,
    }
    led, joined = sorted(
        (second, third), key=lambda o: "group_of" in events_of(o, EventType.EXECUTION_STARTED)[-1].payload
    )
    assert events_of(joined, EventType.EXECUTION_STARTED)[-1].payload["group_of"] == str(led.pk)  # one group


def test_the_first_calls_message_of_an_order_that_rested_with_another_group_is_skipped(trader, queued, market) -> None:
    first, second = submit(trader, price="140"), submit(trader, price="141")
    assert execution.order_execute(order_id=first.pk, attempt=1).status == "RESTING"  # the second went along

    assert execution.order_execute(order_id=second.pk, attempt=1).status == "SKIPPED"  # its own, later
    assert len(events_of(second, EventType.EXECUTION_STARTED)) == 1
    # a message that names no attempt (the sweeper's, an amend's) still checks it at once
    assert execution.order_execute(order_id=second.pk).status == "RESTING"


def test_a_resting_order_is_left_to_its_own_recheck_by_other_orders_groups(trader, queued, market) -> None:
    resting = submit(trader, price="140")
    assert execution.order_execute(order_id=resting.pk).status == "RESTING"
    Order.objects.filter(pk=resting.pk).update(updated_at=timezone.now() - dt.timedelta(seconds=30))
    market.ask = D("139.50")
    asked = submit(trader, price="150")

    assert execution.order_execute(order_id=asked.pk).status == "EXECUTED"

    assert Order.objects.get(pk=resting.pk).status == OrderStatus.APPROVED
    assert len(events_of(resting, EventType.EXECUTION_STARTED)) == 1
    assert execution.order_execute(order_id=resting.pk, recheck=True).status == "EXECUTED"


def test_a_recheck_the_market_cannot_fill_calls_no_venue_and_records_nothing(trader, queued, settings) -> None:
    settings.EXECUTION_GROUP_MAX = 4
    price("AAPL", "148")
    order = submit(trader, price="140")
    assert execution.order_execute(order_id=order.pk).status == "RESTING"
    sim = venue.venue()
    calls, trail = sim.memory.calls(), Event.objects.count()
    long_ago = timezone.now() - dt.timedelta(seconds=30)
    Order.objects.filter(pk=order.pk).update(updated_at=long_ago)
    queued.clear()

    assert execution.order_execute(order_id=order.pk, recheck=True).status == "SKIPPED"

    order.refresh_from_db()
    assert (order.status, sim.memory.calls(), Event.objects.count()) == (OrderStatus.APPROVED, calls, trail)
    assert order.updated_at > long_ago  # its next check counts from now
    assert queued == [(order.pk, {"countdown": 2.0, "with_ids": [], "recheck": True})]
    # the market comes to its limit: the next re-check sends it, and it fills
    Order.objects.filter(pk=order.pk).update(updated_at=long_ago)
    price("AAPL", "139.50")
    assert execution.order_execute(order_id=order.pk, recheck=True).status == "EXECUTED"
    assert sim.memory.calls() == calls + 1


def test_the_simulated_venue_finds_fillable_what_its_calls_would_fill() -> None:
    price("AAPL", "100")
    sim = venue.SimulatedVenue(latency_ms=0, success_probability=1.0, script="")

    def order(side: str, limit: str | None, symbol: str = "AAPL") -> venue.VenueOrder:
        return venue.VenueOrder(
            order_id=f"{side}-{limit}-{symbol}",
            symbol=symbol,
            side=side,
            quantity=D(1),
            price=None if limit is None else D(limit),
        )

    orders = [order("BUY", "99"), order("BUY", "100"), order("SELL", "101"), order("SELL", "100")]
    orders += [order("BUY", None), order("BUY", "1", symbol="NOPRICE")]
    assert sim.fillable(orders) == {"BUY-100-AAPL", "SELL-100-AAPL", "BUY-None-AAPL", "BUY-1-NOPRICE"}
    scripted = venue.SimulatedVenue(latency_ms=0, script="ok")
    assert scripted.fillable(orders) == {o.order_id for o in orders}  # a script answers each call itself


def test_amending_an_order_resting_at_the_venue_checks_it_at_once(
    trader, queued, django_capture_on_commit_callbacks
) -> None:
    from orders.services import order_amend

    price("AAPL", "148")
    order = submit(trader, price="140")
    assert execution.order_execute(order_id=order.pk).status == "RESTING"
    waiting = submit(trader, price="141")  # never sent yet: its own message stays the one
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        order_amend(actor=trader, order_id=order.pk, price=D("149"))
        order_amend(actor=trader, order_id=waiting.pk, price=D("142"))
    assert queued == [(order.pk, {})]
    assert execution.order_execute(order_id=order.pk).status == "EXECUTED"


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
