"""Execution services in-process (no worker): the attempt logic, breaker in the order path, sweeper selection.

The breaker and the venue memory use their demo-mode file stores here (REDIS_URL unset), so these run
without Redis; the worker tests cover the same paths on Redis with real processes.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D  # noqa: N817 - tables read better short

import pytest
from django.utils import timezone

from audit.models import EventType
from orders import breaker, execution, venue
from orders.models import Fill, Order, OrderStatus
from risk.models import Position, RiskState, ScopeState
from tests.execution.conftest import events_of, submit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_stores(settings, tmp_path, monkeypatch):
    settings.REDIS_URL, settings.VAR_DIR = "", str(tmp_path)
    settings.VENUE_LATENCY_MS, settings.VENUE_MAX_SLIPPAGE, settings.VENUE_SCRIPT = 0, "0", ""
    settings.VENUE_SUCCESS_PROBABILITY = 1.0
    venue.venue.cache_clear()
    queued: list[tuple] = []
    monkeypatch.setattr("orders.submission.enqueue", lambda *a, **k: True)
    monkeypatch.setattr(execution, "enqueue", lambda order_id, corr=None, **kw: queued.append((order_id, kw)) or True)
    yield queued
    venue.venue.cache_clear()


def use_venue(settings, **values):
    for name, value in values.items():
        setattr(settings, name, value)
    venue.venue.cache_clear()


def test_order_execute_when_venue_fills_then_executed_once_and_redelivery_skipped(trader, local_stores):
    order = submit(trader)
    assert execution.order_execute(order_id=order.pk).status == "EXECUTED"
    assert execution.order_execute(order_id=order.pk).status == "SKIPPED"
    assert Fill.objects.filter(order=order).count() == 1 and local_stores == []
    assert Order.objects.get(pk=order.pk).status == OrderStatus.EXECUTED


def test_locked_order_when_read_without_the_orm_then_every_field_as_the_orm_reads_it(trader):
    # The worker's look-ups build orders from rows themselves (orders.execution._orders_locked): every column in
    # its place and converted as the ORM converts it, on PostgreSQL and SQLite alike.
    from django.db import transaction

    order = submit(trader, quantity="7", price="101.5")
    Order.objects.filter(pk=order.pk).update(rejection_reason="", executed_price=D("101.25"), resting_seq=None)
    expected = Order.objects.select_related("user").get(pk=order.pk)
    with transaction.atomic():
        found = execution._locked_order(order.pk)
    assert found is not None and not found._state.adding
    for field in Order._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
        assert type(getattr(found, field.attname)) is type(getattr(expected, field.attname)), field.name
    assert found.user.username == trader.username and found.user.pk == trader.pk


def test_locked_positions_and_firm_state_when_read_without_the_orm_then_every_field_as_the_orm_reads_it(
    trader, monkeypatch, local_stores
):
    # risk.store reads the rows a group's fills change (and the firm's state) through core.sql.Rows, not a
    # queryset compiled for every group: every column in its place and converted as the ORM converts it.
    from django.db import transaction

    from risk import store

    monkeypatch.setattr(execution, "venue", lambda: _Venue())
    order = submit(trader, quantity="3", price="99.5")
    assert execution.order_execute(order_id=order.pk).status == "EXECUTED"
    monkeypatch.setattr(Position.objects, "select_for_update", None)  # not through the ORM
    with transaction.atomic():
        positions = store._positions_locked(["AAPL"], ["firm", f"trader:{trader.username}"])
        state = store._firm_state_locked()
    expected = {(p.scope, p.symbol): p for p in Position.objects.filter(symbol="AAPL")}
    assert len(positions) == 2 and [p.pk for p in positions] == sorted(p.pk for p in positions)
    for found, wanted in [*((p, expected[(p.scope, p.symbol)]) for p in positions), (state, RiskState.objects.get())]:
        assert found is not None and not found._state.adding
        for field in type(wanted)._meta.concrete_fields:
            assert getattr(found, field.attname) == getattr(wanted, field.attname), field.name
            assert type(getattr(found, field.attname)) is type(getattr(wanted, field.attname)), field.name


def test_execution_complete_when_called_twice_then_one_fill_and_one_event(trader):
    order = submit(trader)
    assert execution.execution_start(order_id=order.pk) is not None
    fill = venue.Execution("SIM", "X-1", D(10), D("100.5"))
    execution.execution_complete(order_id=order.pk, fill=fill, attempt=1)
    again = execution.execution_complete(order_id=order.pk, fill=fill, attempt=1)
    assert again.status == OrderStatus.EXECUTED
    assert Fill.objects.count() == 1 and len(events_of(order, EventType.EXECUTION_COMPLETED)) == 1
    position = Position.objects.get(scope="firm", symbol="AAPL")
    assert (position.quantity, position.average_price, position.open_buy_quantity) == (D(10), D("100.5"), D(0))
    assert RiskState.objects.get().executed_volume == D(1000)  # at the order price, as reserved


def test_order_execute_when_transient_failure_then_back_to_approved_with_backoff_queued(trader, settings, local_stores):
    use_venue(settings, VENUE_SCRIPT="fail,timeout", VENUE_TIMEOUT_SECONDS=0.01)
    order = submit(trader)
    first = execution.order_execute(order_id=order.pk)
    assert (first.status, first.retry_in, first.attempt) == ("RETRY", 1.0, 1)
    order.refresh_from_db()
    assert (order.status, order.retry_count) == (OrderStatus.APPROVED, 1)
    second = execution.order_execute(order_id=order.pk)
    assert (second.status, second.retry_in, second.reason) == ("RETRY", 2.0, "Venue did not answer within 0.01s")
    assert [kw["countdown"] for _, kw in local_stores] == [1.0, 2.0]
    assert execution.order_execute(order_id=order.pk).status == "EXECUTED"


def test_order_execute_when_breaker_open_then_attempts_fail_fast_and_order_fails(trader, settings, local_stores):
    for _ in range(settings.BREAKER_FAILURE_THRESHOLD):
        breaker.breaker_record(permit=breaker.breaker_acquire(), success=False)
    order = submit(trader)
    outcomes = [execution.order_execute(order_id=order.pk).status for _ in range(3)]
    assert outcomes == ["RETRY", "RETRY", "FAILED"]
    order.refresh_from_db()
    assert (order.status, order.rejection_reason, order.retry_count) == (OrderStatus.FAILED, "Circuit breaker open", 3)
    assert venue.venue().memory.calls() == 0
    assert RiskState.objects.get().open_volume == 0
    assert len(events_of(order, EventType.EXECUTION_FAILED)) == 1


def test_execution_fail_when_order_open_then_failed_released_and_when_final_then_none(trader):
    order = submit(trader, quantity="3", price="20")
    failed = execution.execution_fail(order_id=order.pk, reason="operator gave up")
    assert failed.status == OrderStatus.FAILED and RiskState.objects.get().open_volume == 0
    assert events_of(order, EventType.EXECUTION_FAILED)[0].payload["reason"] == "operator gave up"
    assert execution.execution_fail(order_id=order.pk, reason="again") is None
    assert len(events_of(order, EventType.EXECUTION_FAILED)) == 1


def test_sweeper_when_orders_stuck_then_requeued_once_and_fresh_or_final_left_alone(
    trader, settings, local_stores, django_capture_on_commit_callbacks
):
    settings.ORDER_STUCK_AFTER_SECONDS = 60
    old = timezone.now() - timedelta(seconds=120)
    done = submit(trader, quantity="4")
    execution.order_execute(order_id=done.pk)  # first: its group would take the orders waiting below with it
    approved, executing, fresh = (submit(trader, quantity=str(n)) for n in (1, 2, 3))
    execution.execution_start(order_id=executing.pk)
    Order.objects.filter(pk__in=[approved.pk, executing.pk, done.pk]).update(updated_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        assert sorted(execution.orders_sweep()) == sorted([approved.pk, executing.pk])
    assert sorted((str(pk), kw["resume"]) for pk, kw in local_stores) == sorted(
        [(str(approved.pk), False), (str(executing.pk), True)]
    )
    assert execution.orders_sweep() == []  # their clocks restarted
    assert [e.payload["status"] for e in events_of(executing, EventType.ORDER_REQUEUED)] == ["EXECUTING"]
    assert execution.order_execute(order_id=executing.pk, resume=True).status == "EXECUTED"


# --- execution in groups (orders.execution: executions_start, the group's venue calls, executions_complete) ---
class _Venue:
    """The venue boundary, answering by the order's quantity: 1 rejected, 2 not marketable, anything else
    filled at its price. With `together`, no call answers before that many calls are in progress at once."""

    name = "SIM"

    def __init__(self, together: int = 0) -> None:
        import threading

        self.barrier = threading.Barrier(together, timeout=10) if together else None
        self.calls: list[str] = []

    def execute(self, order: venue.VenueOrder, *, timeout: float) -> venue.Execution:
        self.calls.append(order.order_id)
        if self.barrier is not None:
            self.barrier.wait()  # BrokenBarrierError (a venue error to execution) unless the calls overlap
        if order.quantity == 1:
            raise venue.VenueRejected("Rejected by venue")
        if order.quantity == 2:
            raise venue.VenueNotMarketable("Not marketable", D(101))
        return venue.Execution("SIM", f"G-{order.order_id}", order.quantity, order.price)


def _risk_locks(queries: list[dict]) -> int:
    return sum('FROM "risk_riskstate"' in q["sql"] and "FOR UPDATE" in q["sql"] for q in queries)


@pytest.mark.postgres
def test_order_execute_when_orders_wait_for_their_first_call_then_one_group_books_them_under_one_risk_lock(
    trader, monkeypatch
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sim = _Venue(together=4)  # the four calls overlap, or all of them fail
    monkeypatch.setattr(execution, "venue", lambda: sim)
    first, *others = (submit(trader, quantity=str(n)) for n in (10, 11, 12, 13))
    with CaptureQueriesContext(connection) as queries:
        assert execution.order_execute(order_id=first.pk).status == "EXECUTED"

    for order in (first, *others):
        assert Order.objects.get(pk=order.pk).status == OrderStatus.EXECUTED
        assert len(events_of(order, EventType.EXECUTION_STARTED)) == 1
        assert len(events_of(order, EventType.EXECUTION_COMPLETED)) == 1
        assert Fill.objects.filter(order=order).count() == 1
    assert _risk_locks(queries.captured_queries) == 1  # the fills of the group: one hold of the risk lock
    assert "group_of" not in events_of(first, EventType.EXECUTION_STARTED)[0].payload
    assert {events_of(o, EventType.EXECUTION_STARTED)[0].payload["group_of"] for o in others} == {str(first.pk)}
    position = Position.objects.get(scope="firm", symbol="AAPL")
    assert (position.quantity, position.open_buy_quantity) == (D(46), D(0))
    # the message of an order that went with the group finds nothing left to do
    assert execution.order_execute(order_id=others[0].pk).status == "SKIPPED"


@pytest.mark.postgres
def test_order_execute_when_a_group_outnumbers_the_booking_size_then_one_call_wave_and_a_hold_per_booking(
    trader, monkeypatch, settings
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.EXECUTION_GROUP_MAX, settings.EXECUTION_BOOKING_MAX = 7, 3
    sim = _Venue(together=7)  # all seven calls at once: the venue's latency paid once for the group
    monkeypatch.setattr(execution, "venue", lambda: sim)
    monkeypatch.setattr(execution, "_executor", None)  # a pool as large as the group
    first, *others = (submit(trader, quantity=str(n)) for n in range(10, 17))
    with CaptureQueriesContext(connection) as queries:
        assert execution.order_execute(order_id=first.pk).status == "EXECUTED"

    assert len(sim.calls) == 7
    for order in (first, *others):
        assert Order.objects.get(pk=order.pk).status == OrderStatus.EXECUTED
        assert len(events_of(order, EventType.EXECUTION_COMPLETED)) == 1
    assert Fill.objects.count() == 7
    # 3 + 3 + 1 fills: three bookings, each its own hold of the risk lock (none holds it for all seven)
    assert _risk_locks(queries.captured_queries) == 3
    position = Position.objects.get(scope="firm", symbol="AAPL")
    assert (position.quantity, position.open_buy_quantity) == (D(sum(range(10, 17))), D(0))


@pytest.mark.postgres
def test_group_when_its_orders_trade_several_instruments_then_their_price_factors_read_at_once(trader, monkeypatch):
    # Under the risk lock, one read of the Marks for the group, not one per instrument.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sim = _Venue()
    monkeypatch.setattr(execution, "venue", lambda: sim)
    first = submit(trader, symbol="AAPL", quantity="10")
    second = submit(trader, symbol="MSFT", quantity="5", price="295")
    with CaptureQueriesContext(connection) as queries:
        execution.order_execute(order_id=first.pk)
    assert Order.objects.get(pk=second.pk).status == OrderStatus.EXECUTED
    assert sum('FROM "market_mark"' in q["sql"] for q in queries.captured_queries) == 1
    assert Position.objects.get(scope="firm", symbol="MSFT").quantity == D(5)


@pytest.mark.postgres
def test_group_when_its_fills_are_booked_then_every_position_row_in_one_statement_and_the_firm_row_in_one(
    trader, monkeypatch
):
    # A statement per position row (four scopes per fill) and a refresh and save of the firm's row were the most
    # frequent statements of the order flow; the group writes them in one UPDATE each.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(execution, "venue", lambda: _Venue())
    first = submit(trader, symbol="AAPL", quantity="10")
    others = [submit(trader, symbol="MSFT", quantity="5", price="295"), submit(trader, quantity="3")]
    with CaptureQueriesContext(connection) as queries:
        execution.order_execute(order_id=first.pk)
    sqls = [q["sql"] for q in queries.captured_queries]
    assert sum(sql.startswith('UPDATE "risk_position"') for sql in sqls) == 1
    assert sum('UPDATE "risk_riskstate"' in sql for sql in sqls) == 1
    assert not any(sql.startswith('SELECT "risk_riskstate"."id", "risk_riskstate"."trading_day"') for sql in sqls)
    assert all(Order.objects.get(pk=o.pk).status == OrderStatus.EXECUTED for o in (first, *others))
    for scope in ("firm", "trader:" + trader.username):
        assert Position.objects.get(scope=scope, symbol="AAPL").quantity == D(13)
        assert Position.objects.get(scope=scope, symbol="MSFT").quantity == D(5)
    state = RiskState.objects.get()
    trader_volumes = ScopeState.objects.get(scope="trader:" + trader.username)
    assert (state.open_volume, trader_volumes.open_volume) == (D(0), D(0))
    assert state.executed_volume == trader_volumes.executed_volume > 0  # the same fills, counted once each
    assert state.trading_day == trader_volumes.trading_day == timezone.now().date()


@pytest.mark.postgres
def test_group_when_its_fills_are_booked_then_the_lock_and_every_read_under_it_in_one_round_trip(trader, monkeypatch):
    # The risk lock, then under it the group's orders locked, which venue execution ids are booked already and
    # the instruments' price factors: one round trip (three before).
    from tests.support.connections import round_trips

    booked_before = submit(trader, quantity="10")
    future = submit(trader, symbol="ESH7", quantity="1", price="5000")
    for order in (booked_before, future):
        assert execution.execution_start(order_id=order.pk) is not None
    again = venue.Execution("SIM", "R-1", D(10), D(100))
    execution.execution_complete(order_id=booked_before.pk, fill=again, attempt=1)
    trips = round_trips(monkeypatch)
    booked = execution.executions_complete(
        [(booked_before.pk, again, 1), (future.pk, venue.Execution("SIM", "R-2", D(1), D(5000)), 1)]
    )

    assert {pk: order.status for pk, order in booked.items()} == {
        booked_before.pk: OrderStatus.EXECUTED,  # the duplicate report, ignored
        future.pk: OrderStatus.EXECUTED,
    }
    reads = trips[0]
    assert 'FROM "risk_riskstate"' in reads[0] and "FOR UPDATE" in reads[0]
    assert any('FROM "orders_order"' in sql and "FOR UPDATE OF o" in sql for sql in reads[1:])
    assert any('FROM "orders_fill"' in sql for sql in reads) and any('FROM "market_mark"' in sql for sql in reads)
    assert len(trips) == 4  # then the duplicate report's event, the position rows locked, then the writes
    writes = trips[-1]  # the positions, volumes, orders, Fill rows and events: one round trip (two before)
    assert any(sql.startswith('UPDATE "risk_position"') for sql in writes)
    assert any(sql.startswith('UPDATE "risk_riskstate"') for sql in writes)
    assert any('INSERT INTO "orders_fill"' in sql for sql in writes)
    assert any('INSERT INTO "audit_event"' in sql for sql in writes)
    assert Fill.objects.filter(order=booked_before).count() == 1
    (completed,) = events_of(future, EventType.EXECUTION_COMPLETED)
    assert D(str(completed.payload["factor"])) == D(50)  # the future's multiplier, read through the orders' symbols
    assert Position.objects.get(scope="firm", symbol="ESH7").quantity == D(1)


def test_group_when_others_wait_for_a_retry_rest_at_the_venue_or_exceed_its_size_then_they_are_left(
    trader, settings, monkeypatch, local_stores
):
    settings.EXECUTION_GROUP_MAX = 2
    monkeypatch.setattr(execution, "venue", lambda: _Venue())
    resting = submit(trader, quantity="2")
    assert execution.order_execute(order_id=resting.pk).status == "RESTING"  # back to APPROVED, started once
    retrying = submit(trader, quantity="5")
    Order.objects.filter(pk=retrying.pk).update(retry_count=1)  # a failed attempt, its backoff running
    asked, oldest_fresh, newest_fresh = (submit(trader, quantity=str(n)) for n in (10, 11, 12))

    assert execution.order_execute(order_id=asked.pk).status == "EXECUTED"

    status = dict(Order.objects.values_list("pk", "status"))
    assert status[asked.pk] == status[oldest_fresh.pk] == OrderStatus.EXECUTED  # a group of two, oldest first
    assert status[newest_fresh.pk] == status[retrying.pk] == status[resting.pk] == OrderStatus.APPROVED
    assert len(events_of(resting, EventType.EXECUTION_STARTED)) == 1
    assert not events_of(retrying, EventType.EXECUTION_STARTED)
    assert [str(pk) for pk, _ in local_stores] == [str(resting.pk)]  # its one re-check, nothing more


def test_group_when_a_retry_is_due_then_it_joins_and_its_own_older_message_is_skipped(
    trader, settings, monkeypatch, local_stores
):
    # A failed call's retry was a message and a venue call of its own: under load, the worker's bottleneck.
    monkeypatch.setattr(execution, "venue", lambda: _Venue())
    due, waiting = submit(trader, quantity="5"), submit(trader, quantity="6")
    long_ago = timezone.now() - timedelta(seconds=30)
    Order.objects.filter(pk=due.pk).update(retry_count=1, updated_at=long_ago)  # attempt 1 failed, backoff 1 s over
    Order.objects.filter(pk=waiting.pk).update(retry_count=2)  # attempt 2 failed just now: its 2 s are running
    asked = submit(trader, quantity="10")

    assert execution.order_execute(order_id=asked.pk, attempt=1).status == "EXECUTED"

    status = dict(Order.objects.values_list("pk", "status"))
    assert status[due.pk] == OrderStatus.EXECUTED and status[waiting.pk] == OrderStatus.APPROVED
    started = events_of(due, EventType.EXECUTION_STARTED)[0].payload
    assert (started["attempt"], started["group_of"]) == (2, str(asked.pk))
    # the retry's own message (for attempt 2) comes later and finds it done
    assert execution.order_execute(order_id=due.pk, attempt=2).status == "SKIPPED"
    # an older message (attempt 2) for an order whose attempt 2 already failed: its backoff is not cut short
    assert execution.order_execute(order_id=waiting.pk, attempt=2).status == "SKIPPED"
    assert Order.objects.get(pk=waiting.pk).status == OrderStatus.APPROVED
    assert not events_of(waiting, EventType.EXECUTION_STARTED)
    # its own message, for attempt 3, runs it
    assert execution.order_execute(order_id=waiting.pk, attempt=3).status == "EXECUTED"


def test_group_when_an_order_rested_at_the_venue_then_its_recheck_interval_not_a_retry_backoff_decides(
    trader, settings, monkeypatch, local_stores
):
    settings.VENUE_RECHECK_SECONDS = 2.0
    monkeypatch.setattr(execution, "venue", lambda: _Venue())
    resting = submit(trader, quantity="2")
    assert execution.order_execute(order_id=resting.pk).status == "RESTING"
    # attempt 1 failed before it rested: its 1 s backoff is over, its 2 s re-check interval is not
    Order.objects.filter(pk=resting.pk).update(retry_count=1, updated_at=timezone.now() - timedelta(seconds=1.5))
    asked = submit(trader, quantity="10")

    assert execution.order_execute(order_id=asked.pk).status == "EXECUTED"

    assert Order.objects.get(pk=resting.pk).status == OrderStatus.APPROVED
    assert len(events_of(resting, EventType.EXECUTION_STARTED)) == 1


def test_transient_failure_when_retried_then_its_message_names_the_next_attempt(trader, monkeypatch, local_stores):
    monkeypatch.setattr(execution, "venue", lambda: _Failing())
    order = submit(trader, quantity="3")

    assert execution.order_execute(order_id=order.pk).status == "RETRY"

    assert local_stores == [(order.pk, {"countdown": 1.0, "attempt": 2, "with_ids": []})]


def test_group_when_several_calls_fail_then_one_transaction_records_them_and_one_message_names_them(
    trader, monkeypatch, local_stores
):
    # A failed call was a transaction and a message of its own: a sixth of the worker's time at the simulated
    # venue's 10 % of failures, and a venue that is down fails whole groups.
    monkeypatch.setattr(execution, "venue", lambda: _Failing())
    recorded = []
    record = execution.executions_attempt_failed
    monkeypatch.setattr(execution, "executions_attempt_failed", lambda f: recorded.append(len(f)) or record(f))
    asked, filled = submit(trader, quantity="3"), submit(trader, quantity="7")
    failed = submit(trader, quantity="3", price="101")

    assert execution.order_execute(order_id=asked.pk).status == "RETRY"

    assert recorded == [2]
    assert local_stores == [(asked.pk, {"countdown": 1.0, "attempt": 2, "with_ids": [failed.pk]})]
    status = dict(Order.objects.values_list("pk", "status"))
    assert (status[asked.pk], status[filled.pk], status[failed.pk]) == (
        OrderStatus.APPROVED,
        OrderStatus.EXECUTED,
        OrderStatus.APPROVED,
    )
    for order in (asked, failed):
        assert Order.objects.get(pk=order.pk).retry_count == 1
        (event,) = events_of(order, EventType.EXECUTION_ATTEMPT_FAILED)
        assert event.payload == {
            "attempt": 1,
            "reason": "Venue timeout",
            "will_retry": True,
            "retry_in_seconds": 1.0,
        }
        assert event.correlation_id == order.correlation_id


def test_group_when_one_failure_is_the_last_attempt_then_it_ends_failed_and_the_other_is_retried(
    trader, settings, monkeypatch, local_stores
):
    monkeypatch.setattr(execution, "venue", lambda: _Failing())
    last = submit(trader, quantity="3")
    long_ago = timezone.now() - timedelta(seconds=30)
    Order.objects.filter(pk=last.pk).update(retry_count=settings.EXECUTION_MAX_ATTEMPTS - 1, updated_at=long_ago)
    held_by_last = RiskState.objects.get().open_volume
    asked = submit(trader, quantity="3", price="101")
    both = RiskState.objects.get().open_volume

    assert execution.order_execute(order_id=asked.pk).status == "RETRY"

    ended = Order.objects.get(pk=last.pk)
    assert (ended.status, ended.retry_count) == (OrderStatus.FAILED, settings.EXECUTION_MAX_ATTEMPTS)
    assert [e.event_type for e in events_of(last)][-2:] == [
        EventType.EXECUTION_ATTEMPT_FAILED,
        EventType.EXECUTION_FAILED,
    ]
    assert Order.objects.get(pk=asked.pk).status == OrderStatus.APPROVED
    assert local_stores == [(asked.pk, {"countdown": 1.0, "attempt": 2, "with_ids": []})]
    # what the failed order held is released: only the retried one's reservation is left
    assert 0 < held_by_last < both and RiskState.objects.get().open_volume == both - held_by_last


def test_retry_message_when_its_first_order_went_with_another_group_then_it_takes_the_others_named(
    trader, settings, monkeypatch, local_stores
):
    monkeypatch.setattr(execution, "venue", lambda: _Failing())
    first, second, third = (submit(trader, quantity="3", price=str(100 + n)) for n in range(3))
    assert execution.order_execute(order_id=first.pk).status == "RETRY"
    ((asked, message),) = local_stores
    assert (asked, message["with_ids"]) == (first.pk, [second.pk, third.pk])
    Order.objects.filter(pk__in=[first.pk, second.pk, third.pk]).update(
        updated_at=timezone.now() - timedelta(seconds=1.5)  # the message's countdown has run
    )
    monkeypatch.setattr(execution, "venue", lambda: _Venue())  # the venue is back
    settings.EXECUTION_GROUP_MAX = 1
    assert execution.order_execute(order_id=first.pk, attempt=2).status == "EXECUTED"  # alone, another message
    settings.EXECUTION_GROUP_MAX = 16
    retry = execution.order_execute(order_id=first.pk, attempt=message["attempt"], with_ids=message["with_ids"])

    assert retry.status == "EXECUTED"

    status = dict(Order.objects.values_list("pk", "status"))
    assert status[second.pk] == status[third.pk] == OrderStatus.EXECUTED
    started = [events_of(order, EventType.EXECUTION_STARTED)[-1].payload for order in (second, third)]
    assert [payload["attempt"] for payload in started] == [2, 2]
    assert sorted("group_of" in payload for payload in started) == [False, True]  # one group of the two


def test_group_when_the_venue_answers_differently_then_each_order_gets_its_own_outcome(
    trader, settings, monkeypatch, local_stores
):
    monkeypatch.setattr(execution, "venue", lambda: _Venue())
    filled, rejected, resting = (submit(trader, quantity=str(n)) for n in (7, 1, 2))

    assert execution.order_execute(order_id=filled.pk).status == "EXECUTED"

    status = dict(Order.objects.values_list("pk", "status"))
    assert (status[filled.pk], status[rejected.pk], status[resting.pk]) == (
        OrderStatus.EXECUTED,
        OrderStatus.FAILED,
        OrderStatus.APPROVED,
    )
    assert [e.payload["reason"] for e in events_of(rejected, EventType.EXECUTION_FAILED)] == ["Rejected by venue"]
    assert len(events_of(resting, EventType.ORDER_RESTING)) == 1
    assert Fill.objects.filter(order=filled).count() == 1 and not Fill.objects.exclude(order=filled).exists()
    position = Position.objects.get(scope="firm", symbol="AAPL")
    assert (position.quantity, position.open_buy_quantity) == (D(7), D(2))  # the resting order still reserved


class _Failing(_Venue):
    """Quantity 3: a transient failure (the venue down for that call); the rest as _Venue."""

    def execute(self, order: venue.VenueOrder, *, timeout: float) -> venue.Execution:
        if order.quantity == 3:
            raise venue.VenueUnavailable("Venue timeout")
        return super().execute(order, timeout=timeout)


def test_group_when_its_orders_call_the_venue_then_one_breaker_update_for_permits_and_one_for_results(
    trader, monkeypatch, local_stores
):
    # Two updates of the shared breaker state per group (one Redis round trip each while CLOSED), not two per
    # order; the results counted in the calls' order: filled, rejected (an answer), failed, failed.
    updates = []
    update = breaker.FileStore.update
    monkeypatch.setattr(breaker.FileStore, "update", lambda self, step: updates.append(1) or update(self, step))
    monkeypatch.setattr(execution, "venue", lambda: _Failing())
    first, rejected, *failing = (
        submit(trader, quantity=str(n), price=p) for n, p in ((7, "100"), (1, "100"), (3, "100"), (3, "99"))
    )

    assert execution.order_execute(order_id=first.pk).status == "EXECUTED"

    assert len(updates) == 2
    assert breaker.breaker_snapshot()["failures"] == 2
    status = dict(Order.objects.values_list("pk", "status"))
    assert [status[o.pk] for o in (first, rejected, *failing)] == [
        OrderStatus.EXECUTED,
        OrderStatus.FAILED,
        OrderStatus.APPROVED,  # back for a retry
        OrderStatus.APPROVED,
    ]


def test_group_when_its_message_names_the_rest_of_the_batch_then_those_go_first_before_older_ones(
    trader, settings, monkeypatch, local_stores
):
    settings.EXECUTION_GROUP_MAX = 2
    monkeypatch.setattr(execution, "venue", lambda: _Venue())
    older, asked, named = (submit(trader, quantity=str(n)) for n in (10, 11, 12))

    assert execution.order_execute(order_id=asked.pk, with_ids=[str(named.pk)]).status == "EXECUTED"

    status = dict(Order.objects.values_list("pk", "status"))
    assert status[asked.pk] == status[named.pk] == OrderStatus.EXECUTED
    assert status[older.pk] == OrderStatus.APPROVED  # left to its own message


def test_order_execute_when_its_order_went_with_another_group_then_skipped_without_an_info_line(
    trader, monkeypatch, caplog
):
    # Routine with groups (most messages under load): said at DEBUG; the EXECUTION_STARTED event says whose group.
    import logging

    monkeypatch.setattr(execution, "venue", lambda: _Venue())
    first, other = (submit(trader, quantity=str(n)) for n in (5, 6))
    assert execution.order_execute(order_id=first.pk).status == "EXECUTED"
    with caplog.at_level(logging.INFO, logger="itirp"):
        assert execution.order_execute(order_id=other.pk).status == "SKIPPED"
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("itirp")]
    with caplog.at_level(logging.DEBUG, logger="itirp"):
        assert execution.order_execute(order_id=other.pk).status == "SKIPPED"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG] == ["execution_skipped"]


@pytest.mark.postgres
def test_group_start_when_its_message_names_others_then_the_asked_order_and_its_group_read_in_one_round_trip(
    trader, settings, monkeypatch
):
    # The asked order locked, the others its message names, then the oldest others waiting: one round trip
    # (three before), each statement after the one before in the same transaction; then the writes in one.
    from tests.support.connections import round_trips

    settings.EXECUTION_GROUP_MAX = 4
    older, asked, named = (submit(trader, quantity=str(n)) for n in (10, 11, 12))
    trips = round_trips(monkeypatch)

    group = execution.executions_start(order_id=asked.pk, group_max=4, with_ids=[named.pk], attempt=1)

    assert [order.pk for order in group] == [asked.pk, named.pk, older.pk]  # named first, then the oldest
    unlocked, reads, writes = trips  # _taken's read, the locked reads, the UPDATE and the events
    assert "FOR UPDATE" not in unlocked[0]
    assert len(reads) == 3 and all('FROM "orders_order"' in sql and "FOR UPDATE OF o" in sql for sql in reads)
    assert "SKIP LOCKED" not in reads[1] and "SKIP LOCKED" in reads[2]  # the named waited for, the others not
    assert any(sql.startswith('UPDATE "orders_order"') for sql in writes)
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.EXECUTING}
    for order in group:
        assert len(events_of(order, EventType.EXECUTION_STARTED)) == 1


@pytest.mark.postgres
def test_group_start_when_its_batch_fills_the_group_then_no_read_of_older_orders(trader, settings, monkeypatch):
    # The batch's own orders leave no room: the oldest others are not read (nor their rows locked) for nothing.
    from tests.support.connections import round_trips

    settings.EXECUTION_GROUP_MAX = 2
    older, asked, named = (submit(trader, quantity=str(n)) for n in (10, 11, 12))
    trips = round_trips(monkeypatch)

    group = execution.executions_start(order_id=asked.pk, group_max=2, with_ids=[named.pk], attempt=1)

    assert [order.pk for order in group] == [asked.pk, named.pk]
    assert len(trips[1]) == 2 and "SKIP LOCKED" not in " ".join(trips[1])
    assert Order.objects.get(pk=older.pk).status == OrderStatus.APPROVED


@pytest.mark.postgres
def test_group_start_when_the_asked_order_is_not_fresh_then_the_orders_read_with_it_are_left(
    trader, settings, monkeypatch
):
    # A message whose order was taken by another group after _taken's unlocked read: the orders read in its
    # round trip are not started (the locks the reads took end with the transaction).
    from tests.support.connections import round_trips

    waiting, asked, named = (submit(trader, quantity=str(n)) for n in (10, 11, 12))
    Order.objects.filter(pk=asked.pk).update(status=OrderStatus.EXECUTING)
    monkeypatch.setattr(execution, "_taken", lambda *args, **kwargs: False)
    trips = round_trips(monkeypatch)

    assert execution.executions_start(order_id=asked.pk, group_max=4, with_ids=[named.pk], attempt=1) == []

    assert len(trips) == 1 and len(trips[0]) == 3
    assert Order.objects.get(pk=waiting.pk).status == Order.objects.get(pk=named.pk).status == OrderStatus.APPROVED
    assert not events_of(waiting, EventType.EXECUTION_STARTED) and not events_of(named, EventType.EXECUTION_STARTED)


def test_group_when_its_fills_start_a_new_utc_day_then_the_reset_event_comes_first_and_the_day_restarts(
    trader, monkeypatch
):
    # The day's roll is read off the firm's row locked for the booking: DAILY_VOLUME_RESET with the day that
    # ended, written in the group's own insert before its fills' events; the new day holds the group's fills.
    from audit.models import Event

    monkeypatch.setattr(execution, "venue", lambda: _Venue())
    first, second = submit(trader, quantity="10"), submit(trader, quantity="5")
    yesterday = timezone.now().date() - timedelta(days=1)
    RiskState.objects.update(trading_day=yesterday, executed_volume=D("777"))

    assert execution.order_execute(order_id=first.pk).status == "EXECUTED"

    (reset,) = Event.objects.filter(event_type=EventType.DAILY_VOLUME_RESET)
    assert reset.payload["previous_day"] == yesterday.isoformat()
    assert D(str(reset.payload["previous_volume"])) == D("777")
    assert reset.payload["day"] == timezone.now().date().isoformat()
    completed = [events_of(order, EventType.EXECUTION_COMPLETED)[0] for order in (first, second)]
    assert all(reset.sequence < event.sequence for event in completed)
    state = RiskState.objects.get()
    assert (state.trading_day, state.executed_volume) == (timezone.now().date(), D("1500"))  # 15 at the limit 100


@pytest.mark.postgres
def test_group_when_its_fills_are_booked_then_its_writes_are_six_statements_whatever_its_size(trader, monkeypatch):
    # The positions, every scope's volumes, the firm's row, the orders, the Fill rows and the events: a statement
    # each, however many orders and scopes (a statement per order and per scope before, in two round trips: 15
    # for these five).
    from tests.support.connections import round_trips

    monkeypatch.setattr(execution, "venue", lambda: _Venue())
    orders = [
        submit(trader, symbol=symbol, quantity=quantity, price=price)
        for symbol, quantity, price in (
            ("AAPL", "10", "100"),
            ("MSFT", "5", "295"),
            ("AAPL", "3", "100"),
            ("GOOGL", "4", "98"),
            ("MSFT", "6", "295"),
        )
    ]
    trips = round_trips(monkeypatch)

    assert execution.order_execute(order_id=orders[0].pk).status == "EXECUTED"

    writes = trips[-1]
    assert len(writes) == 6, writes
    assert sum('"risk_scopestate"' in sql for sql in writes) == 1
    assert sum(sql.startswith('UPDATE "orders_order"') for sql in writes) == 1
    assert all(Order.objects.get(pk=order.pk).status == OrderStatus.EXECUTED for order in orders)
    volumes = dict(ScopeState.objects.values_list("scope", "executed_volume"))
    assert volumes["symbol:AAPL"] == D(1300) and volumes["symbol:MSFT"] == D(3245) and volumes["symbol:GOOGL"] == D(392)
    assert volumes["trader:" + trader.username] == D(4937)
    assert all(ScopeState.objects.get(scope=scope).open_volume == 0 for scope in volumes)
