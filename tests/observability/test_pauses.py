"""Pauses that hold up every request at once (core.pauses): long risk-lock holds and long collector passes are
counted in /metrics and logged, with who held the lock; short ones are not; a rolled-back hold is not timed."""

from __future__ import annotations

import gc
import time

import pytest
from django.db import transaction

from core import pauses
from orders import execution
from orders.venue import Execution
from risk import store
from tests.observability.conftest import sample, scrape, submit

HOLDS = "itirp_risk_lock_long_holds_total"
PASSES = "itirp_gc_long_pauses_total"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # the hold ends at the commit: on_commit must run
def test_risk_lock_when_held_past_the_threshold_then_counted_and_logged_by_its_holder(
    client_for, trader, no_enqueue, settings, json_logs
):
    client = client_for(trader)
    before = scrape(client)
    settings.RISK_LOCK_WARN_SECONDS = 0.0  # every hold is long
    order = submit(trader)
    execution.execution_start(order_id=order.pk)
    fill = Execution(venue="SIMULATED", venue_execution_id=f"x-{order.pk}", quantity=order.quantity, price=order.price)
    execution.execution_complete(order_id=order.pk, fill=fill)
    settings.RISK_LOCK_WARN_SECONDS = 60.0  # none is long
    submit(trader, quantity="2")
    after = scrape(client)

    def delta(holder: str) -> float:
        return sample(after, HOLDS, holder=holder) - sample(before, HOLDS, holder=holder)

    # named by the function that took the lock, through the group commit and the execution's booking
    assert delta("orders.submission.orders_decide") == 1
    assert delta("orders.execution.executions_complete") == 1
    lines = json_logs.events("risk_lock_held_long")
    assert [line["details"]["holder"] for line in lines] == [
        "orders.submission.orders_decide",
        "orders.execution.executions_complete",
    ]
    assert all(line["level"] == "WARNING" and line["details"]["held_ms"] >= 0 for line in lines)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_risk_lock_when_taken_twice_in_one_transaction_then_one_hold_and_a_rollback_none(settings, json_logs):
    settings.RISK_LOCK_WARN_SECONDS = 0.05
    with transaction.atomic():
        store.lock()
        time.sleep(0.06)
        store.lock()  # the same hold, read again
    assert [line["details"]["holder"] for line in json_logs.events("risk_lock_held_long")] == [
        f"{__name__}.test_risk_lock_when_taken_twice_in_one_transaction_then_one_hold_and_a_rollback_none"
    ]
    assert json_logs.events("risk_lock_held_long")[0]["details"]["held_ms"] >= 50

    class Undone(Exception):
        pass

    with pytest.raises(Undone), transaction.atomic():
        store.lock()
        time.sleep(0.06)
        raise Undone
    assert len(json_logs.events("risk_lock_held_long")) == 1  # the rolled-back hold is not timed

    settings.RISK_LOCK_WARN_SECONDS = 10.0
    with transaction.atomic():
        store.lock()
    assert len(json_logs.events("risk_lock_held_long")) == 1  # a short hold is not reported


@pytest.mark.django_db
def test_collector_when_a_pass_is_long_then_reported_at_the_next_report_not_inside_the_pass(api, settings, json_logs):
    settings.GC_PAUSE_WARN_SECONDS = 60.0
    pauses.watch_collector()  # as the web and worker processes do once loaded
    before = scrape(api)
    assert (PASSES, frozenset({("generation", "2")})) in before  # exported from the start, at 0 until a long pass
    settings.GC_PAUSE_WARN_SECONDS = 0.0  # every pass is long
    pauses.watch_collector()
    try:
        gc.collect()
        # noted by the callback, not logged from inside the collector
        assert json_logs.events("gc_pause_long") == []
        pauses.report()
    finally:
        settings.GC_PAUSE_WARN_SECONDS = 60.0
        pauses.watch_collector()
        pauses.report()  # whatever the threshold of 0 caught since
    passes = json_logs.events("gc_pause_long")
    # gc.collect()'s full pass among them (an allocation may have started a younger one first)
    assert any(line["details"]["generation"] == 2 for line in passes)
    assert all(line["level"] == "WARNING" and line["details"]["paused_ms"] >= 0 for line in passes)
    after = scrape(api)
    assert sample(after, PASSES, generation="2") - sample(before, PASSES, generation="2") >= 1
    assert gc.callbacks.count(pauses._on_collection) == 1  # watched once, however often asked
    gc.collect()
    pauses.report()
    assert len(json_logs.events("gc_pause_long")) == len(passes)  # a short pass is not reported
