"""The shared circuit breaker: its state machine, exactly one half-open trial across processes, fail-safe."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from orders import breaker
from orders.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerOpen,
    BreakerState,
    Config,
    FileStore,
    Permit,
    RedisStore,
    _acquire,
    _result,
)

CFG = Config(threshold=5, open_seconds=60, trial_seconds=15)


def test_breaker_when_five_consecutive_failures_then_open_for_open_seconds():
    state = BreakerState()
    for n in range(1, 5):
        state, moved = _result(state, 100.0, Permit(), False, CFG)
        assert (state.status, state.failures, moved) == (CLOSED, n, ())
    state, moved = _result(state, 100.0, Permit(), False, CFG)
    assert state.status == OPEN and state.open_until == 160.0
    assert [(t.previous, t.status) for t in moved] == [(CLOSED, OPEN)]


def test_breaker_when_success_between_failures_then_count_restarts():
    state = BreakerState()
    for success in [False, False, False, False, True, False, False, False, False]:
        state, _ = _result(state, 1.0, Permit(), success, CFG)
    assert (state.status, state.failures) == (CLOSED, 4)


def test_breaker_when_open_then_refuses_until_open_until_then_one_trial():
    state = BreakerState(status=OPEN, failures=5, open_until=160.0)
    same, verdict = _acquire(state, 159.9, "a", CFG)
    assert verdict.permit is None and verdict.refusal == "Circuit breaker open" and same == state
    state, first = _acquire(state, 160.0, "a", CFG)
    assert first.permit == Permit(token="a") and state.status == HALF_OPEN
    assert [(t.previous, t.status) for t in first.transitions] == [(OPEN, HALF_OPEN)]
    state, second = _acquire(state, 160.5, "b", CFG)
    assert second.permit is None and "trial call in progress" in second.refusal and second.transitions == ()


def test_breaker_when_trial_succeeds_then_closed_and_when_it_fails_then_reopened():
    half = BreakerState(status=HALF_OPEN, failures=5, open_until=160.0, trial_token="a", trial_until=175.0)
    closed, moved = _result(half, 161.0, Permit(token="a"), True, CFG)
    assert closed == BreakerState() and [(t.previous, t.status) for t in moved] == [(HALF_OPEN, CLOSED)]
    reopened, moved = _result(half, 161.0, Permit(token="a"), False, CFG)
    assert (reopened.status, reopened.open_until, reopened.trial_token) == (OPEN, 221.0, "")
    assert [(t.previous, t.status) for t in moved] == [(HALF_OPEN, OPEN)]


def test_breaker_when_trial_holder_vanishes_then_token_expires_for_next_caller():
    half = BreakerState(status=HALF_OPEN, failures=5, open_until=160.0, trial_token="a", trial_until=175.0)
    state, verdict = _acquire(half, 175.0, "b", CFG)
    assert verdict.permit == Permit(token="b") and state.trial_token == "b"
    # the late answer of the dead trial decides nothing
    assert _result(state, 176.0, Permit(token="a"), True, CFG) == (state, ())


def test_breaker_when_late_result_of_closed_era_call_then_ignored_while_open():
    state = BreakerState(status=OPEN, failures=5, open_until=160.0)
    assert _result(state, 100.0, Permit(), True, CFG) == (state, ())
    assert _result(state, 100.0, Permit(), False, CFG) == (state, ())


def _contend(kind: str, where: str, barrier, results) -> None:
    store = RedisStore(_client(where), "itirp-test:breaker") if kind == "redis" else FileStore(Path(where))
    barrier.wait()
    verdict = store.update(lambda state, now: _acquire(state, now, multiprocessing.current_process().name, CFG))
    results.put((verdict.permit is not None, len(verdict.transitions)))


def _client(url: str):
    import redis

    return redis.Redis.from_url(url)


def _race(kind: str, where: str, store, processes: int = 8) -> list[tuple[bool, int]]:
    store.update(lambda s, now: (BreakerState(status=OPEN, failures=5, open_until=now - 1), None))
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(kind, where, barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return outcomes


@pytest.mark.redis
@pytest.mark.slow
def test_breaker_redis_when_many_processes_race_half_open_then_exactly_one_trial(settings):
    store = RedisStore(_client(settings.REDIS_URL), "itirp-test:breaker")
    store.reset()
    outcomes = _race("redis", settings.REDIS_URL, store)
    assert sum(1 for allowed, _ in outcomes if allowed) == 1
    assert sum(moved for _, moved in outcomes) == 1  # one process made OPEN -> HALF_OPEN, so one event
    assert store.read()[0].status == HALF_OPEN
    store.reset()


@pytest.mark.redis
def test_breaker_redis_when_a_step_changes_nothing_then_one_plain_read_and_no_transaction(settings):
    # Every venue call acquires and reports: while CLOSED with no failures neither changes the state, and
    # each took a WATCH/MULTI/EXEC transaction (four round trips); now one pipelined read.
    client = _client(settings.REDIS_URL)
    store = RedisStore(client, "itirp-test:breaker-reads")
    store.reset()
    transactions: list[bool] = []
    pipeline = client.pipeline

    def spied(transaction: bool = True, **kwargs):  # noqa: ANN202, FBT001, FBT002 - redis-py's signature
        transactions.append(transaction)
        return pipeline(transaction=transaction, **kwargs)

    client.pipeline = spied
    permit = store.update(lambda state, now: _acquire(state, now, "t1", CFG))
    assert permit.permit is not None and not permit.permit.trial
    store.update(lambda state, now: _result(state, now, Permit(), True, CFG))
    assert transactions == [False, False]
    # A failure changes the state: written under WATCH/MULTI, and read back.
    store.update(lambda state, now: _result(state, now, Permit(), False, CFG))
    assert transactions == [False, False, False, True] and store.read()[0].failures == 1
    store.reset()


@pytest.mark.slow
def test_breaker_file_store_when_many_processes_race_half_open_then_exactly_one_trial(tmp_path):
    store = FileStore(tmp_path)
    outcomes = _race("file", str(tmp_path), store)
    assert sum(1 for allowed, _ in outcomes if allowed) == 1
    assert sum(moved for _, moved in outcomes) == 1


@pytest.mark.django_db
def test_breaker_service_when_redis_unreachable_then_fails_safe_as_closed(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    breaker.redis_client.cache_clear()
    try:
        permit = breaker.breaker_acquire()
        assert permit.degraded
        breaker.breaker_record(permit=permit, success=False)
        assert breaker.breaker_snapshot() == {"status": CLOSED, "failures": 0, "open_until": None}
        with pytest.raises(RedisConnectionError):
            breaker.breaker_check()
    finally:
        breaker.redis_client.cache_clear()
    assert "treated as CLOSED" in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["redis", "file"])
def test_breaker_service_when_threshold_reached_then_events_and_snapshot(backend, settings, tmp_path, redis_or_none):
    from audit.models import Event, EventType

    if backend == "file":
        settings.REDIS_URL, settings.VAR_DIR = "", str(tmp_path)
    elif redis_or_none is None:
        pytest.skip("needs Redis")
    settings.BREAKER_OPEN_SECONDS = 0.5
    breaker.breaker_reset()
    for _ in range(5):
        breaker.breaker_record(permit=breaker.breaker_acquire(), success=False)
    snap = breaker.breaker_snapshot()
    assert snap["status"] == OPEN and snap["failures"] == 5 and snap["open_until"]
    with pytest.raises(BreakerOpen):
        breaker.breaker_acquire()
    time.sleep(0.6)
    assert breaker.breaker_snapshot()["status"] == HALF_OPEN
    trial = breaker.breaker_acquire()
    assert trial.trial
    with pytest.raises(BreakerOpen, match="trial call in progress"):
        breaker.breaker_acquire()
    breaker.breaker_record(permit=trial, success=True)
    assert breaker.breaker_snapshot() == {"status": CLOSED, "failures": 0, "open_until": None}
    kinds = list(Event.objects.order_by("sequence").values_list("event_type", flat=True))
    assert kinds == [
        EventType.CIRCUIT_BREAKER_OPENED,
        EventType.CIRCUIT_BREAKER_HALF_OPENED,
        EventType.CIRCUIT_BREAKER_CLOSED,
    ]
    opened = Event.objects.get(event_type=EventType.CIRCUIT_BREAKER_OPENED)
    assert opened.payload["failures"] == 5 and opened.payload["from"] == CLOSED
    breaker.breaker_reset()


@pytest.mark.django_db
def test_breaker_each_when_a_group_asks_while_half_open_then_one_trial_and_results_counted_in_order(settings, tmp_path):
    # A group's acquires and results are one update each, answering what the same calls made one after the
    # other would: the first caller takes the trial (and records OPEN -> HALF_OPEN), the others are refused.
    from audit.models import Event, EventType

    settings.REDIS_URL, settings.VAR_DIR = "", str(tmp_path)
    settings.BREAKER_OPEN_SECONDS = 0.2
    breaker.breaker_record_each([(Permit(), False, breaker.Caller())] * settings.BREAKER_FAILURE_THRESHOLD)
    assert breaker.breaker_snapshot()["status"] == OPEN
    time.sleep(0.3)
    callers = [breaker.Caller(context={"order_id": str(n)}) for n in range(3)]
    trial, *refused = breaker.breaker_acquire_each(callers)
    assert isinstance(trial, Permit) and trial.trial
    assert [type(r) for r in refused] == [BreakerOpen, BreakerOpen]
    assert all("trial call in progress" in r.reason for r in refused)  # type: ignore[union-attr]
    half = Event.objects.get(event_type=EventType.CIRCUIT_BREAKER_HALF_OPENED)
    assert half.payload["order_id"] == "0"
    breaker.breaker_record_each([(trial, True, callers[0])])
    assert breaker.breaker_snapshot()["status"] == CLOSED
    # closed: failures, a success, failures; the success in the middle restarts the count
    results = [False, False, True, False]
    breaker.breaker_record_each([(breaker.breaker_acquire(), ok, breaker.Caller()) for ok in results])
    assert breaker.breaker_snapshot()["failures"] == 1
