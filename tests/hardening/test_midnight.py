"""The UTC midnight boundary crossed during a stream of orders (time-machine, in-process, real PostgreSQL and
Redis): the daily volume resets once, at the first fill of the new day, and the limit applies afresh."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from audit.models import Event, EventType
from orders import execution
from orders.models import Order
from orders.submission import OrderRequest, order_submit
from risk import services as risk_services
from risk import store
from risk.models import RiskLimits, RiskState
from tests.support.market import price

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]

DAY = dt.datetime(2031, 3, 14, tzinfo=dt.UTC)
MIDNIGHT = DAY + dt.timedelta(days=1)


@pytest.fixture
def limits(risk_manager) -> RiskLimits:
    # 10 orders of notional 100 fit a day exactly; positions and exposures stay far from their limits.
    return risk_services.risk_limits_update(
        actor=risk_manager,
        reason="midnight drill",
        max_daily_volume=Decimal("1000"),
        max_position_size=Decimal("1000000"),
        max_net_exposure=Decimal("100000000"),
        max_gross_exposure=Decimal("100000000"),
    )


@pytest.fixture(autouse=True)
def fast_venue(settings) -> None:
    settings.VENUE_LATENCY_MS = 0
    settings.VENUE_SUCCESS_PROBABILITY = 1.0
    settings.VENUE_MAX_SLIPPAGE = "0"
    execution.venue.cache_clear()
    yield
    execution.venue.cache_clear()


def _submit_and_fill(user, n: int) -> str:
    price("MID", "10")  # the market the stream trades at, priced at the traveller's clock
    order, decision = order_submit(
        user=user,
        request=OrderRequest(
            symbol="MID",
            side="BUY" if n % 2 == 0 else "SELL",
            quantity=Decimal("10"),
            price=Decimal("10"),
            client_order_id=f"mid-{n}",
        ),
    )
    if decision.approved:
        outcome = execution.order_execute(order_id=order.pk)
        assert outcome.status == "EXECUTED", outcome
    return order.status if not decision.approved else Order.objects.get(pk=order.pk).status


def test_daily_volume_resets_once_at_utc_midnight_during_a_stream(trader, limits) -> None:
    results: list[tuple[dt.datetime, str]] = []
    # 12 orders in the last 12 seconds of the day, 12 in the first 12 seconds of the next: 10 fit each day.
    moments = [MIDNIGHT - dt.timedelta(seconds=12 - i) for i in range(12)]
    moments += [MIDNIGHT + dt.timedelta(seconds=i, milliseconds=1) for i in range(12)]
    with time_machine.travel(moments[0], tick=False) as traveller:
        for n, moment in enumerate(moments):
            traveller.move_to(moment)
            results.append((moment, _submit_and_fill(trader, n)))
        state = RiskState.objects.get()
        metrics_after = store.snapshot(state).daily_volume(store.utc_today())
    before = [status for moment, status in results if moment < MIDNIGHT]
    after = [status for moment, status in results if moment >= MIDNIGHT]
    assert before == ["EXECUTED"] * 10 + ["REJECTED"] * 2
    assert after == ["EXECUTED"] * 10 + ["REJECTED"] * 2
    resets = Event.objects.filter(event_type=EventType.DAILY_VOLUME_RESET)
    assert resets.count() == 1
    reset = resets.get()
    assert reset.payload["previous_day"] == DAY.date().isoformat()
    assert Decimal(str(reset.payload["previous_volume"])) == Decimal("1000")
    assert reset.payload["day"] == MIDNIGHT.date().isoformat()
    assert state.trading_day == MIDNIGHT.date() and state.executed_volume == Decimal("1000")
    assert metrics_after == Decimal("1000")
    rejected = Order.objects.filter(status="REJECTED")
    assert all("daily" in (o.rejection_reason or "").lower() for o in rejected), [o.rejection_reason for o in rejected]


def test_order_approved_before_midnight_and_filled_after_counts_on_the_new_day(trader, limits) -> None:
    with time_machine.travel(MIDNIGHT - dt.timedelta(seconds=2), tick=False) as traveller:
        for n in range(9):
            assert _submit_and_fill(trader, n) == "EXECUTED"
        late, decision = order_submit(
            user=trader,
            request=OrderRequest(symbol="MID", side="BUY", quantity=Decimal("10"), price=Decimal("10")),
        )
        assert decision.approved
        traveller.move_to(MIDNIGHT + dt.timedelta(milliseconds=5))
        price("MID", "10")
        assert execution.order_execute(order_id=late.pk).status == "EXECUTED"
        state = RiskState.objects.get()
    assert state.trading_day == MIDNIGHT.date()
    assert state.executed_volume == Decimal("100")  # the new day holds only the fill made in it
    assert state.open_volume == Decimal("0")
    assert Event.objects.filter(event_type=EventType.DAILY_VOLUME_RESET).count() == 1
