"""Broker outages on the production topology (issue 20, items 2 and 3): the web server, a prefork Celery worker run
with compose's flags (heartbeat and the control channel on), the throw-away Redis SIGKILLed and restarted.

The sweeper is pushed out of the way (ORDER_STUCK_AFTER_SECONDS=600 for the worker) so that what is measured
is the worker's survival and the requeue on reconnect, not the last resort.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.hardening.conftest import FaultStack, order_body, wait_for
from tests.hardening.test_faults import Stream, _orders_by_client_id, _record

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NO_SWEEPER = {"ORDER_STUCK_AFTER_SECONDS": "600", "VENUE_LATENCY_MS": "40"}


@pytest.fixture(autouse=True, scope="module")
def _default_worker_afterwards(fault_stack: FaultStack) -> Iterator[None]:
    """The worker of these tests has no sweeper: the tests after them (the fault drills rely on the sweeper
    for the orders an outage leaves behind) get the fixture's own worker back."""
    yield
    fault_stack.worker_default()


def _worker_like_production(stack: FaultStack) -> int:
    """A worker as docker-compose.yml runs it (prefork -c 2, without gossip and mingle only), not the fixture's
    quieter one: the crash surfaced on the control channel's socket."""
    if stack.worker is not None:
        stack.worker_kill()
    marker = len(stack.log_text("worker"))
    stack.worker_extra = dict(NO_SWEEPER)
    stack._worker_custom = True
    stack.worker = stack._spawn(
        "worker",
        [sys.executable, "-m", "celery", "-A", "itirp", "worker", "--loglevel", "INFO", "--pool", "prefork"]
        + ["--concurrency", "2", "--hostname", "outage@%h", "--without-gossip", "--without-mingle"],
        ITIRP_PROCESS="worker",
        **NO_SWEEPER,
    )
    wait_for(lambda: " ready." in stack.log_text("worker")[marker:], timeout=60, what="worker ready")
    return stack.worker.pid


def _not_executed(stack: FaultStack, prefix: str) -> dict[str, str]:
    return {cid: status for cid, (_, status) in _orders_by_client_id(stack, prefix).items() if status != "EXECUTED"}


def test_redis_killed_repeatedly_under_load_worker_process_survives_and_executes_again(fault_stack: FaultStack):
    """The production topology's version of tests/execution/test_broker_loss.py (which reproduces the old exit:
    "Unrecoverable error: AttributeError('NoneType' object has no attribute 'hostname')"). Through the web server
    (then gunicorn) the exit is rarer: two runs of this test on the old code (6 and 10 outages) did not hit it."""
    stack = fault_stack
    stack.settle()
    pid = _worker_like_production(stack)
    marker = len(stack.log_text("worker"))
    prefix = f"bl-{uuid.uuid4().hex[:8]}"
    rounds = 10
    with Stream(stack, prefix, pause=0.02) as stream:
        for _ in range(rounds):
            stream.wait_for_more(15)  # deliveries in flight, unacked (acks_late)
            stack.redis_stop()
            time.sleep(2)
            stack.redis_start()
            wait_for(
                lambda: (
                    "Connected to redis" in stack.log_text("worker")[marker:].rsplit("Connection to broker lost", 1)[-1]
                    or stack.worker.poll() is not None
                ),
                timeout=60,
                what="worker reconnected (or exited)",
            )
            assert stack.worker.poll() is None, f"worker exited:\n{stack.log_text('worker')[-4000:]}"
        stream.wait_for_more(15)
    log = stack.log_text("worker")[marker:]
    assert "Unrecoverable error" not in log
    assert stack.worker.pid == pid and stack.worker.poll() is None
    # The same process executes what came after the last outage, and everything before it (the requeue on
    # reconnect queues what the broker lost): no restart, no sweeper.
    wait_for(lambda: not _not_executed(stack, prefix), timeout=90, interval=0.5, what="every order EXECUTED")
    assert stack.worker.pid == pid and stack.worker.poll() is None
    codes = Counter(code for _, code, _ in stream.answers)
    _record(
        "broker_killed_repeatedly",
        rounds=rounds,
        submissions=len(stream.answers),
        answers=dict(codes),
        worker_pid_unchanged=True,
        requeued_on_reconnect=log.count("waiting order(s) requeued"),
    )
    assert codes == Counter({200: len(stream.answers)}), codes
    stack.assert_consistent()


def _post_ms(stack: FaultStack, body: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    response = stack.api("POST", "/orders", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    return elapsed, response.json()


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def test_redis_stopped_post_answers_without_waiting_and_orders_execute_seconds_after_it_returns(fault_stack):
    stack = fault_stack
    stack.settle()
    if stack.worker is None or stack.worker_extra != NO_SWEEPER:
        _worker_like_production(stack)
    prefix = f"bo-{uuid.uuid4().hex[:8]}"
    normal = [_post_ms(stack, order_body(n, prefix=prefix))[0] for n in range(40)]
    wait_for(lambda: not _not_executed(stack, prefix), timeout=60, what="baseline orders executed")
    stack.redis_stop()
    answers = [_post_ms(stack, order_body(n, prefix=prefix + "-down")) for n in range(60)]
    down = [ms for ms, _ in answers]
    assert {body["status"] for _, body in answers} == {"APPROVED"}
    stack.redis_start()
    returned = time.monotonic()
    wait_for(lambda: not _not_executed(stack, prefix + "-down"), timeout=60, interval=0.1, what="orders executed")
    executed_after = time.monotonic() - returned
    figures = {
        "normal_p50_ms": round(statistics.median(normal), 1),
        "normal_p95_ms": round(_p95(normal), 1),
        "broker_down_p50_ms": round(statistics.median(down), 1),
        "broker_down_p95_ms": round(_p95(down), 1),
        "broker_down_max_ms": round(max(down), 1),
        "all_executed_seconds_after_return": round(executed_after, 2),
    }
    _record("broker_down_answers", **figures)
    # Issue 20, item 3: under 50 ms more than normal; generous bounds here so a busy 2-core machine does not
    # fail the test (the measured figures are recorded above and in the README).
    assert figures["broker_down_p95_ms"] < 200, figures
    assert executed_after < 10, figures
    stack.assert_consistent()
