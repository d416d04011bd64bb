"""Faults with real processes: PostgreSQL stopped, Redis killed, workers SIGKILLed, a soak at a steady rate.

All against the throw-away stack of conftest.fault_stack (its own PostgreSQL and Redis, on free ports); each
test restores what it stopped and leaves every order settled and the event log replaying to the live state.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.hardening.conftest import BEAT_READY, FaultStack, _kill_group, order_body, wait_for

pytestmark = pytest.mark.slow
RESULTS = Path(os.environ.get("ITIRP_VAR_DIR", "/tmp")) / "hardening-results.json"


def _record(name: str, **figures: Any) -> None:
    """Figures for the README's reliability table, printed and kept beside the test run."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = figures
    RESULTS.write_text(json.dumps(data, indent=2, default=str))
    print(f"\n[hardening] {name}: {json.dumps(figures, default=str)}")


class Stream:
    """Submits orders one after another from a thread and keeps every answer (or transport error)."""

    def __init__(self, stack: FaultStack, prefix: str, pause: float = 0.05) -> None:
        self.stack, self.prefix, self.pause = stack, prefix, pause
        self.answers: list[tuple[str, int, dict[str, Any]]] = []
        self.transport_errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            body = order_body(n, prefix=self.prefix)
            try:
                response = self.stack.api("POST", "/orders", json=body)
                try:
                    payload = response.json()
                except ValueError:
                    payload = {"raw": response.text[:300]}
                self.answers.append((body["client_order_id"], response.status_code, payload))
            except requests.RequestException as exc:
                self.transport_errors.append(f"{body['client_order_id']}: {exc.__class__.__name__}")
            n += 1
            time.sleep(self.pause)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def count(self) -> int:
        return len(self.answers) + len(self.transport_errors)

    def wait_for_more(self, n: int, timeout: float = 60) -> None:
        target = self.count() + n
        wait_for(lambda: self.count() >= target, timeout=timeout, what=f"{n} more answers")


@pytest.fixture(autouse=True)
def _default_worker(fault_stack: FaultStack) -> None:
    """Each drill starts with the fixture's own worker, whatever an earlier test (here or in another module
    sharing the stack) left running: its recovery of stuck orders is what is being tested."""
    fault_stack.worker_default()


def _orders_by_client_id(stack: FaultStack, prefix: str) -> dict[str, tuple[str, str]]:
    rows = stack.sql(
        "SELECT client_order_id, id::text, status FROM orders_order WHERE client_order_id LIKE %s", prefix + "-%"
    )
    return {cid: (oid, status) for cid, oid, status in rows}


def _decision_events(stack: FaultStack, order_ids: list[str]) -> Counter:
    if not order_ids:
        return Counter()
    rows = stack.sql(
        "SELECT order_id::text, count(*) FROM audit_event WHERE order_id = ANY(%s::uuid[]) "
        "AND event_type IN ('ORDER_CREATED', 'RISK_CHECK_STARTED', 'RISK_CHECK_PASSED', 'RISK_CHECK_FAILED') "
        "GROUP BY order_id",
        order_ids,
    )
    return Counter(dict(rows))


def test_postgres_stopped_during_a_stream_answers_503_writes_nothing_half_and_resumes(fault_stack: FaultStack) -> None:
    stack = fault_stack
    stack.settle()
    prefix = f"pg-{uuid.uuid4().hex[:8]}"
    with Stream(stack, prefix) as stream:
        stream.wait_for_more(15)
        stack.pg_stop("fast")
        down_at = stream.count()
        time.sleep(5)
        during = stream.count() - down_at
        stack.pg_start()
        stream.wait_for_more(30, timeout=90)
    codes = Counter(code for _, code, _ in stream.answers)
    unavailable = [(cid, body) for cid, code, body in stream.answers if code == 503]
    _record(
        "postgres_stopped",
        submissions=stream.count(),
        answers=dict(codes),
        during_outage=during,
        transport_errors=len(stream.transport_errors),
    )
    assert not stream.transport_errors, stream.transport_errors[:5]
    assert set(codes) <= {200, 503}, codes  # never a 500, never anything else
    assert unavailable, "the outage produced no 503: the fault did not happen"
    for _, body in unavailable:
        assert body["code"] == "database_unavailable", body
        assert "nothing was changed" in body["detail"], body
    # After the restart the platform resumes: the last answers are all accepted.
    assert all(code == 200 for _, code, _ in stream.answers[-10:]), stream.answers[-10:]

    stored = _orders_by_client_id(stack, prefix)
    refused = {cid for cid, _ in unavailable}
    assert not refused & set(stored), f"orders written although answered 503: {sorted(refused & set(stored))}"
    accepted = {cid: body for cid, code, body in stream.answers if code == 200}
    assert set(accepted) == set(stored), "an accepted order is missing, or an unanswered one was stored"
    for cid, body in accepted.items():
        assert stored[cid] and body["order_id"] == stored[cid][0]
    events = _decision_events(stack, [oid for oid, _ in stored.values()])
    assert all(events[oid] == 3 for oid, _ in stored.values()), "an order without its three decision events"

    wait_for(lambda: stack.beat.poll() is None, timeout=1, what="beat alive after the outage")
    stack.settle()
    assert stack.statuses().keys() <= {"EXECUTED", "REJECTED"}, stack.statuses()
    stack.assert_consistent()


def test_beat_started_while_postgres_is_down_waits_for_it_then_schedules(fault_stack: FaultStack) -> None:
    """Beat reads its schedule from the database as it starts: django-celery-beat's scheduler then raised and
    beat exited (a beat started just before an outage was gone for good). It waits now (itirp/beat.py), says
    so, and schedules once the database is back."""
    stack = fault_stack
    stack.settle()
    _kill_group(stack.beat)
    marker = len(stack.log_text("beat"))
    stack.pg_stop("fast")
    try:
        stack.beat_start(wait=False, loglevel="DEBUG", LOG_LEVEL="DEBUG")
        wait_for(
            lambda: "database unavailable at beat's start" in stack.log_text("beat")[marker:],
            timeout=60,
            what="beat waiting for the database",
        )
        time.sleep(3)  # a few of its retries
        assert stack.beat.poll() is None, stack.log_text("beat")[marker:][-3000:]
        assert BEAT_READY not in stack.log_text("beat")[marker:]
    finally:
        stack.pg_start()
    stack.beat_wait_ready(marker)
    waited = stack.log_text("beat")[marker:].count("database unavailable at beat's start")
    after = len(stack.log_text("beat"))
    # ORDER_SWEEP_SECONDS is 2 here: the sweeper's task is due within seconds of beat's start. (Beat says it
    # sends a periodic task at DEBUG, settings' quiet_periodic: this beat logs at DEBUG.)
    wait_for(
        lambda: "Sending due task orders-sweep-stuck" in stack.log_text("beat")[after:],
        timeout=30,
        what="beat sending the sweeper's task",
    )
    _record("beat_started_during_postgres_outage", retries_logged=waited)
    assert waited >= 2
    _kill_group(stack.beat)
    stack.beat_start()  # the fixture's own, at INFO
    stack.settle()
    stack.assert_consistent()


def test_redis_killed_orders_still_accepted_and_each_executed_once_after_it_returns(fault_stack: FaultStack) -> None:
    stack = fault_stack
    stack.settle()
    prefix = f"rd-{uuid.uuid4().hex[:8]}"
    health_during = None
    with Stream(stack, prefix) as stream:
        stream.wait_for_more(10)
        stack.redis_stop()
        killed_at = stream.count()
        stream.wait_for_more(8, timeout=120)
        during = stream.count() - killed_at
        health_during = requests.get(stack.url + "/api/v1/health", timeout=10)
        metrics_during = stack.api("GET", "/metrics")
        stack.redis_start()
        stream.wait_for_more(10, timeout=90)
    codes = Counter(code for _, code, _ in stream.answers)
    assert not stream.transport_errors, stream.transport_errors[:5]
    assert codes == Counter({200: len(stream.answers)}), codes
    statuses = Counter(body["status"] for _, _, body in stream.answers)
    assert statuses == Counter({"APPROVED": len(stream.answers)}), statuses
    # Health says what is down; the metrics answer still comes (the breaker state reads as unknown).
    assert health_during.status_code == 503 and health_during.json()["status"] == "degraded"
    assert metrics_during.status_code == 200, metrics_during.text

    restarts_before = len(stack.restarts)
    stack.settle(timeout=120)
    worker_exits = stack.restarts[restarts_before:]
    stored = _orders_by_client_id(stack, prefix)
    assert len(stored) == len(stream.answers)
    not_executed = {cid: status for cid, (_, status) in stored.items() if status != "EXECUTED"}
    assert not not_executed, not_executed
    fills = stack.sql(
        "SELECT count(*) FROM orders_fill f JOIN orders_order o ON o.id = f.order_id WHERE o.client_order_id LIKE %s",
        prefix + "-%",
    )[0][0]
    requeued = stack.sql(
        "SELECT count(DISTINCT e.order_id) FROM audit_event e JOIN orders_order o ON o.id = e.order_id "
        "WHERE e.event_type = 'ORDER_REQUEUED' AND o.client_order_id LIKE %s",
        prefix + "-%",
    )[0][0]
    # An order whose message was parked can also be taken by another order's execution group once the
    # database answers (orders.execution.executions_start): its EXECUTION_STARTED names that order.
    joined_a_group = stack.sql(
        "SELECT count(DISTINCT e.order_id) FROM audit_event e JOIN orders_order o ON o.id = e.order_id "
        "WHERE e.event_type = 'EXECUTION_STARTED' AND e.payload ? 'group_of' AND o.client_order_id LIKE %s "
        "AND NOT EXISTS (SELECT 1 FROM audit_event r WHERE r.order_id = e.order_id AND r.event_type = 'ORDER_REQUEUED')",
        prefix + "-%",
    )[0][0]
    _record(
        "redis_killed",
        submissions=len(stream.answers),
        during_outage=during,
        answers=dict(codes),
        executed=len(stored),
        fills=fills,
        requeued_by_sweeper=requeued,
        taken_by_a_group=joined_a_group,
        processes_restarted_after_exit=worker_exits,
    )
    assert fills == len(stored)
    # Orders were accepted during the outage, and every one was executed exactly once (above), whichever path
    # took it: its parked message relayed, the worker's re-queue on reconnect, the sweeper, or another order's
    # group (the re-queue on reconnect is tested in tests/execution/test_publish.py).
    assert during > 0
    stack.assert_consistent()


def test_worker_sigkilled_repeatedly_mid_execution_no_order_stuck_or_filled_twice(fault_stack: FaultStack) -> None:
    stack = fault_stack
    stack.settle()
    # A slow venue that also hangs after filling: kills land both before and after the venue's fill.
    stack.worker_kill()
    slow = {"VENUE_LATENCY_MS": "300", "VENUE_HANG_AFTER_FILL_SECONDS": "0.3"}
    stack.worker_start(concurrency=2, **slow)
    prefix = f"kill-{uuid.uuid4().hex[:8]}"
    kills = 0
    executing_at_kill = []
    for n in range(40):
        response = stack.api("POST", "/orders", json=order_body(n, prefix=prefix))
        assert response.status_code == 200 and response.json()["status"] == "APPROVED", response.text
    for _ in range(4):
        wait_for(
            lambda: stack.sql("SELECT count(*) FROM orders_order WHERE status = 'EXECUTING'")[0][0] > 0,
            timeout=60,
            interval=0.05,
            what="an execution in flight",
        )
        time.sleep(0.25)
        executing_at_kill.append(stack.sql("SELECT count(*) FROM orders_order WHERE status = 'EXECUTING'")[0][0])
        stack.worker_kill()
        kills += 1
        stack.worker_start(concurrency=2, **slow)
    stack.settle(timeout=180)
    assert stack.worker is not None and stack.worker.poll() is None
    stored = _orders_by_client_id(stack, prefix)
    statuses = Counter(status for _, status in stored.values())
    fills = stack.sql(
        "SELECT count(*) FROM orders_fill f JOIN orders_order o ON o.id = f.order_id WHERE o.client_order_id LIKE %s",
        prefix + "-%",
    )[0][0]
    resumed = stack.sql(
        "SELECT count(*) FROM audit_event e JOIN orders_order o ON o.id = e.order_id "
        "WHERE e.event_type = 'ORDER_REQUEUED' AND o.client_order_id LIKE %s",
        prefix + "-%",
    )[0][0]
    _record(
        "worker_sigkill",
        orders=len(stored),
        kills=kills,
        executing_at_each_kill=executing_at_kill,
        statuses=dict(statuses),
        fills=fills,
        requeued_by_sweeper=resumed,
    )
    assert statuses == Counter({"EXECUTED": 40}), statuses
    assert fills == 40
    assert resumed > 0  # the kills did leave orders behind, and the sweeper picked them up
    stack.assert_consistent()
    stack.worker_kill()
    stack.worker_start()


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """The process and all its descendants (the web server's main process + workers, celery main + pool)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
    return pids


def _rss(root_pid: int) -> int:
    return sum(_rss_kb(pid) for pid in _tree(root_pid))


@pytest.mark.timeout(int(float(os.environ.get("SOAK_SECONDS", "600"))) + 400)
def test_soak_at_a_steady_rate_memory_flat_no_errors_nothing_stuck(fault_stack: FaultStack) -> None:
    """SOAK_SECONDS (default 600) at SOAK_RATE orders per second through the web server (2 workers) and a worker."""
    stack = fault_stack
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    rate = float(os.environ.get("SOAK_RATE", "5"))
    stack.settle()
    prefix = f"soak-{uuid.uuid4().hex[:8]}"
    codes: Counter = Counter()
    errors: list[str] = []
    samples: list[tuple[float, int, int]] = []
    start = time.monotonic()
    n = 0
    next_sample = start
    while time.monotonic() - start < seconds:
        due = start + n / rate
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        try:
            response = stack.api("POST", "/orders", json=order_body(n, prefix=prefix, symbol=f"S{n % 7}"))
            codes[response.status_code] += 1
            if response.status_code != 200:
                errors.append(response.text[:200])
        except requests.RequestException as exc:
            errors.append(exc.__class__.__name__)
        n += 1
        if time.monotonic() >= next_sample:
            samples.append((round(time.monotonic() - start, 1), _rss(stack.web.pid), _rss(stack.worker.pid)))
            next_sample += max(seconds / 40, 1)
    stack.settle(timeout=120)
    samples.append((round(time.monotonic() - start, 1), _rss(stack.web.pid), _rss(stack.worker.pid)))
    # Memory after warm-up (the first quarter: imports, connection pools, caches filling) against the end.
    warm = samples[max(1, len(samples) // 4)]
    end = samples[-1]
    statuses = Counter(
        dict(
            stack.sql(
                "SELECT status, count(*) FROM orders_order WHERE client_order_id LIKE %s GROUP BY status", prefix + "-%"
            )
        )
    )
    _record(
        "soak",
        seconds=seconds,
        rate_per_second=rate,
        submissions=n,
        answers=dict(codes),
        statuses=dict(statuses),
        web_rss_kb_warm_end=[warm[1], end[1]],
        worker_rss_kb_warm_end=[warm[2], end[2]],
        samples=samples,
    )
    assert not errors, errors[:5]
    assert statuses == Counter({"EXECUTED": n}), statuses
    # Bound: at most 20% or 24 MB over the warm figure, whichever is larger (a leak per order grows without end).
    for name, warm_kb, end_kb in (("web", warm[1], end[1]), ("worker", warm[2], end[2])):
        assert end_kb <= max(warm_kb * 1.2, warm_kb + 24 * 1024), f"{name} RSS grew {warm_kb} -> {end_kb} kB"
    stack.assert_consistent()
