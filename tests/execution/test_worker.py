"""Execution by real Celery worker processes on real Redis and PostgreSQL (no eager mode).

Each test starts its own workers (tests/support/worker.py) with the venue configured through their
environment, submits orders through the order service, and waits (bounded) for the database to show
the outcome. Timing is observed from event timestamps, never asserted as performance.
"""

from __future__ import annotations

import time
from decimal import Decimal as D  # noqa: N817 - tables read better short

import pytest

from audit.models import EventType
from orders.models import Fill, Order, OrderStatus
from risk.models import Position, RiskState
from tests.execution.conftest import (
    FAST_VENUE,
    celery_beat,
    events,
    events_of,
    status_of,
    submit,
    wait_for,
)
from tests.support.market import price
from tests.support.worker import celery_worker, stop

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

FINAL = {OrderStatus.EXECUTED, OrderStatus.FAILED, OrderStatus.CANCELLED}


def wait_final(order, timeout: float = 40) -> str:
    return wait_for(lambda: status_of(order) in FINAL and status_of(order), timeout=timeout, what=f"{order.pk} final")


def reserved() -> tuple[D, D, D]:
    state = RiskState.objects.get()
    totals = [
        sum((getattr(p, f) for p in Position.objects.filter(scope="firm")), D(0))
        for f in ("open_buy_quantity", "open_sell_quantity")
    ]
    return state.open_volume, totals[0], totals[1]


def test_worker_when_orders_executed_then_fill_position_pnl_and_volume_follow(trader, redis):
    with celery_worker(name="exec-ok", **FAST_VENUE):
        buy = submit(trader, side="BUY", quantity="10", price="100")
        assert wait_final(buy) == OrderStatus.EXECUTED
        price("AAPL", "110")  # the market rises to the sell's limit, so the sell is marketable
        sell = submit(trader, side="SELL", quantity="4", price="110")
        assert wait_final(sell) == OrderStatus.EXECUTED
    buy.refresh_from_db()
    assert (buy.executed_quantity, buy.executed_price, buy.retry_count) == (D(10), D(100), 0)
    assert Fill.objects.filter(order=buy).count() == 1
    position = Position.objects.get(scope="firm", symbol="AAPL")
    assert (position.quantity, position.average_price, position.realized_pnl, position.mark_price) == (
        D(6),
        D(100),
        D(40),
        D(110),
    )
    assert reserved() == (D(0), D(0), D(0))
    assert RiskState.objects.get().executed_volume == D(1440)
    kinds = [e.event_type for e in events_of(buy)]
    assert kinds == [
        EventType.ORDER_CREATED,
        EventType.RISK_CHECK_STARTED,
        EventType.RISK_CHECK_PASSED,
        EventType.EXECUTION_STARTED,
        EventType.EXECUTION_COMPLETED,
    ]
    completed = events_of(sell, EventType.EXECUTION_COMPLETED)[0].payload
    fill = Fill.objects.get(order=sell)
    assert D(completed["fill_quantity"]) == D(4) and D(completed["fill_price"]) == D(110) == fill.price
    assert completed["venue"] == "SIMULATED" and completed["venue_execution_id"] == fill.venue_execution_id
    assert completed["attempt"] == 1 and D(completed["order_price"]) == D(110)


def test_worker_when_venue_fails_twice_then_third_attempt_fills_after_backoff(trader, redis):
    with celery_worker(name="exec-retry", VENUE_SCRIPT="fail,fail,ok", VENUE_SCRIPT_SCOPE="order", **FAST_VENUE):
        order = submit(trader)
        assert wait_final(order) == OrderStatus.EXECUTED
    order.refresh_from_db()
    assert order.retry_count == 2
    started = events_of(order, EventType.EXECUTION_STARTED)
    failed = events_of(order, EventType.EXECUTION_ATTEMPT_FAILED)
    assert [e.payload["attempt"] for e in started] == [1, 2, 3]
    assert [(e.payload["attempt"], e.payload["reason"], e.payload["will_retry"]) for e in failed] == [
        (1, "Venue unavailable", True),
        (2, "Venue unavailable", True),
    ]
    assert events_of(order, EventType.EXECUTION_COMPLETED)[0].payload["attempt"] == 3
    delays = [(started[i + 1].timestamp - failed[i].timestamp).total_seconds() for i in range(2)]
    print(f"observed backoff delays: {delays}")
    assert delays[0] >= 0.95 and delays[1] >= 1.95, delays  # the countdown is a floor, not a measurement
    assert Fill.objects.filter(order=order).count() == 1


def test_worker_when_venue_always_fails_then_failed_after_three_attempts_and_reservation_released(trader, redis):
    price("AAPL", "50")  # the market at the order's price: it reserves 7 x 50
    with celery_worker(name="exec-fail", **{**FAST_VENUE, "VENUE_SUCCESS_PROBABILITY": "0"}):
        order = submit(trader, quantity="7", price="50")
        assert reserved() == (D(350), D(7), D(0))
        assert wait_final(order) == OrderStatus.FAILED
        second = submit(trader, symbol="MSFT", quantity="1", price="10")
        assert wait_final(second) == OrderStatus.FAILED
    order.refresh_from_db()
    assert order.retry_count == 3 and order.rejection_reason == "Venue unavailable"
    assert [e.payload["attempt"] for e in events_of(order, EventType.EXECUTION_ATTEMPT_FAILED)] == [1, 2, 3]
    final = events_of(order, EventType.EXECUTION_FAILED)
    assert len(final) == 1 and final[0].payload["reason"] == "Venue unavailable" and final[0].payload["attempts"] == 3
    assert not Fill.objects.exists()
    assert reserved() == (D(0), D(0), D(0))
    assert Position.objects.get(scope="firm", symbol="AAPL").quantity == 0


def test_worker_when_venue_rejects_then_failed_at_once_without_retry(trader, redis):
    with celery_worker(name="exec-reject", VENUE_SCRIPT="reject", **FAST_VENUE):
        order = submit(trader)
        assert wait_final(order) == OrderStatus.FAILED
    assert len(events_of(order, EventType.EXECUTION_STARTED)) == 1
    attempt = events_of(order, EventType.EXECUTION_ATTEMPT_FAILED)
    assert [(e.payload["attempt"], e.payload["will_retry"]) for e in attempt] == [(1, False)]
    assert Order.objects.get(pk=order.pk).rejection_reason == "Rejected by venue"
    assert reserved() == (D(0), D(0), D(0))


def test_worker_breaker_opens_after_five_then_one_trial_across_two_workers_then_closes(trader, redis, venue_memory):
    from orders.breaker import breaker_snapshot

    failing = {
        **FAST_VENUE,
        "VENUE_SUCCESS_PROBABILITY": "0",
        "EXECUTION_MAX_ATTEMPTS": "1",
        "BREAKER_OPEN_SECONDS": "4",
    }
    with celery_worker(name="brk-fail", **failing):
        first = [submit(trader, quantity=str(n)) for n in range(1, 6)]
        for order in first:
            assert wait_final(order) == OrderStatus.FAILED
        assert [e.payload["failures"] for e in events(EventType.CIRCUIT_BREAKER_OPENED)] == [5]
        assert breaker_snapshot()["status"] == "OPEN"
        calls = venue_memory.calls()
        blocked = submit(trader, quantity="6")
        assert wait_final(blocked) == OrderStatus.FAILED
        assert Order.objects.get(pk=blocked.pk).rejection_reason == "Circuit breaker open"
        assert venue_memory.calls() == calls  # failed fast: the venue never saw it
    wait_for(lambda: breaker_snapshot()["status"] == "HALF_OPEN", timeout=10, what="open period to end")

    slow_ok = {**FAST_VENUE, "VENUE_LATENCY_MS": "2500", "BREAKER_OPEN_SECONDS": "4"}
    with celery_worker(name="brk-a", **slow_ok), celery_worker(name="brk-b", **slow_ok):
        calls = venue_memory.calls()
        pair = [submit(trader, quantity="7"), submit(trader, quantity="8")]
        for order in pair:
            assert wait_final(order, timeout=60) == OrderStatus.EXECUTED
    assert len(events(EventType.CIRCUIT_BREAKER_HALF_OPENED)) == 1
    closed = events(EventType.CIRCUIT_BREAKER_CLOSED)
    assert len(closed) == 1
    refused = [
        e
        for o in pair
        for e in events_of(o, EventType.EXECUTION_ATTEMPT_FAILED)
        if "trial call in progress" in e.payload["reason"]
    ]
    assert refused, "the second worker's order should have met the half-open breaker"
    assert len({e.order_id for e in refused}) == 1
    assert venue_memory.calls() - calls == 2  # the trial, then the refused order once the breaker closed
    retried = refused[0].order_id
    completed = Order.objects.get(pk=retried)
    assert events_of(completed, EventType.EXECUTION_COMPLETED)[0].timestamp > closed[0].timestamp
    assert breaker_snapshot() == {"status": "CLOSED", "failures": 0, "open_until": None}


def test_worker_killed_after_venue_fill_then_sweeper_resumes_and_order_fills_once(
    trader, redis, venue_memory, settings
):
    from orders.execution import orders_sweep

    with celery_worker(name="kill-a", VENUE_HANG_AFTER_FILL_SECONDS="120", **FAST_VENUE) as doomed:
        order = submit(trader)
        venue_fill = wait_for(lambda: venue_memory.recall(str(order.pk)), timeout=30, what="venue fill")
        assert status_of(order) == OrderStatus.EXECUTING
        stop(doomed, hard=True)  # SIGKILL the worker and its pool child while the fill is unbooked
    assert status_of(order) == OrderStatus.EXECUTING and not Fill.objects.exists()
    with celery_worker(name="kill-b", **FAST_VENUE):
        settings.ORDER_STUCK_AFTER_SECONDS = 0
        assert orders_sweep() == [order.pk]
        assert wait_final(order) == OrderStatus.EXECUTED
        time.sleep(1)  # let any duplicate delivery run into the already-booked order
    fill = Fill.objects.get(order=order)
    assert fill.venue_execution_id == venue_fill.venue_execution_id
    assert len(events_of(order, EventType.EXECUTION_COMPLETED)) == 1
    requeued = events_of(order, EventType.ORDER_REQUEUED)
    assert [(e.payload["status"], e.payload["resume"]) for e in requeued] == [("EXECUTING", True)]
    assert Position.objects.get(scope="firm", symbol="AAPL").quantity == D(10)
    assert reserved() == (D(0), D(0), D(0))


def test_worker_when_same_task_delivered_twice_then_one_fill(trader, redis):
    from orders.execution import enqueue

    with celery_worker(name="dup", concurrency=3, **{**FAST_VENUE, "VENUE_LATENCY_MS": "800"}):
        order = submit(trader)  # its own message, plus two more: a plain duplicate and a resume duplicate
        assert enqueue(order.pk, order.correlation_id)
        assert enqueue(order.pk, order.correlation_id, resume=True)
        assert wait_final(order) == OrderStatus.EXECUTED
        time.sleep(2)  # the duplicates finish at the venue after the booking
    assert Fill.objects.filter(order=order).count() == 1
    assert len(events_of(order, EventType.EXECUTION_COMPLETED)) == 1
    assert Position.objects.get(scope="firm", symbol="AAPL").quantity == D(10)
    assert RiskState.objects.get().executed_volume == D(1000)


def test_beat_sweeper_when_message_lost_then_order_picked_up_and_executed(trader, redis, monkeypatch):
    monkeypatch.setattr("orders.submission.enqueue", lambda *args, **kwargs: False)
    sweep = {"ORDER_SWEEP_SECONDS": "1", "ORDER_STUCK_AFTER_SECONDS": "1"}
    with celery_worker(name="swept", **FAST_VENUE, **sweep), celery_beat(**sweep) as beat:
        # Submitted once the worker is connected: its requeue on connect is over, only the sweeper can find it.
        time.sleep(1)
        order = submit(trader)
        assert status_of(order) == OrderStatus.APPROVED
        assert wait_final(order, timeout=60) == OrderStatus.EXECUTED
        assert "orders.sweep_stuck" in beat.log_path.read_text()
    requeued = events_of(order, EventType.ORDER_REQUEUED)
    assert requeued and requeued[0].payload["status"] == "APPROVED" and requeued[0].payload["resume"] is False
    assert Fill.objects.filter(order=order).count() == 1


def test_kill_switch_when_orders_queued_without_worker_then_cancelled_before_execution(trader, risk_manager, redis):
    from orders.services import kill_switch_set

    queued = [submit(trader, quantity=str(n)) for n in (1, 2, 3)]
    # one wake-up: the later two batches found it waiting, and its group would take their orders
    assert redis.llen("celery") == 1
    _, cancelled = kill_switch_set(actor=risk_manager, enabled=True, reason="drill")
    assert sorted(cancelled) == sorted(o.pk for o in queued)
    with celery_worker(name="after-kill", **FAST_VENUE):
        wait_for(lambda: redis.llen("celery") == 0, timeout=30, what="queue drained")
        wait_for(lambda: redis.hlen("unacked") == 0, timeout=30, what="the message handled and acked")
    assert {status_of(o) for o in queued} == {OrderStatus.CANCELLED}
    assert not Fill.objects.exists()
    assert not events(EventType.EXECUTION_STARTED)
    assert reserved() == (D(0), D(0), D(0))


SUBMIT_WITH_BROKER_DOWN = """
import django, os, time
os.environ["DJANGO_SETTINGS_MODULE"] = "itirp.settings"
django.setup()
from decimal import Decimal
from accounts.models import User
from orders.submission import OrderRequest, order_submit
started = time.monotonic()
order, decision = order_submit(
    user=User.objects.get(pk={user_id}),
    request=OrderRequest(symbol="AAPL", side="BUY", quantity=Decimal(3), price=Decimal(100)),
)
print(order.pk, order.status, round(time.monotonic() - started, 2))
"""


def test_worker_when_broker_down_at_submission_then_order_accepted_and_executed_after_return(trader, redis):
    import subprocess
    import sys

    from tests.support.worker import ROOT, worker_env

    env = worker_env(CELERY_BROKER_URL="redis://127.0.0.1:1/0", LOG_LEVEL="ERROR")
    done = subprocess.run(
        [sys.executable, "-c", SUBMIT_WITH_BROKER_DOWN.replace("{user_id}", str(trader.pk))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # the publish must give up on its own, well inside this
    )
    assert done.returncode == 0, done.stderr[-2000:]
    order_id, status, seconds = done.stdout.split()
    print(f"submission with the broker down answered in {seconds}s")
    assert status == OrderStatus.APPROVED
    order = Order.objects.get(pk=order_id)
    assert status_of(order) == OrderStatus.APPROVED and redis.llen("celery") == 0
    # The worker connecting to the broker re-queues the waiting order: no sweep needed (issue 20, item 3).
    with celery_worker(name="broker-back", **FAST_VENUE):
        assert wait_final(order) == OrderStatus.EXECUTED
    requeued = events_of(order, EventType.ORDER_REQUEUED)
    assert len(requeued) == 1 and requeued[0].payload["status"] == OrderStatus.APPROVED


def test_worker_resting_limit_orders_cost_no_venue_call_until_the_market_reaches_them(trader, redis):
    price("AAPL", "100")
    with celery_worker(name="resting", VENUE_RECHECK_SECONDS="0.5", **FAST_VENUE):
        far, near, nearer = (submit(trader, side="BUY", quantity="1", price=limit) for limit in ("95", "96", "97"))
        wait_for(
            lambda: all(events_of(order, EventType.ORDER_RESTING) for order in (far, near, nearer)),
            timeout=30,
            what="the three orders resting",
        )
        time.sleep(2.5)  # five re-check intervals: the market has not moved, so nothing is sent
        assert [status_of(order) for order in (far, near, nearer)] == [OrderStatus.APPROVED] * 3
        assert [len(events_of(order, EventType.EXECUTION_STARTED)) for order in (far, near, nearer)] == [1, 1, 1]

        price("AAPL", "96")  # the ask comes down to two of the limits
        assert wait_final(near, timeout=30) == wait_final(nearer, timeout=30) == OrderStatus.EXECUTED
        time.sleep(1.5)
        assert status_of(far) == OrderStatus.APPROVED
        assert len(events_of(far, EventType.EXECUTION_STARTED)) == 1
    for order in (near, nearer):
        assert len(events_of(order, EventType.EXECUTION_STARTED)) == 2  # rested once, filled on the next call
