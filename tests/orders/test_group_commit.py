"""Group commit of order submissions (orders/batching.py, orders.services.orders_decide).

First GroupCommit alone, with threads and no database: every caller gets its own result or its own error, the
queued items are decided together, never more than max_batch at a time. Then orders_decide on PostgreSQL: a
batch is decided in order on the state that includes the reservations of the orders approved before it
(reservations and events written exactly for the approved ones, events in batch order), duplicates come back
in their place, a failed write leaves nothing behind, and a batch decides exactly what deciding its orders one
at a time would have decided.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from audit.models import Event, EventType
from orders import submission as submission_module
from orders.batching import GroupCommit
from orders.models import Order, OrderStatus
from orders.submission import DuplicateOrder, Submission, orders_decide
from risk import store
from risk.checks import Violation
from risk.models import FIRM_STATE_ID, Position, RiskLimits, RiskState
from tests.orders.conftest import submission, written, written_but_refusal
from tests.support.connections import as_a_new_request, health_checks, round_trips, server_ends

WAIT = 10  # seconds: the bound of every wait on another thread


# --- GroupCommit alone ------------------------------------------------------------------------------------------
class _Gated:
    """A run_batch whose first call blocks until released, so that the other submitters queue behind it."""

    def __init__(self, answer: Callable[[Sequence[Any]], Sequence[Any]]) -> None:
        self.answer = answer
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[Any]] = []
        self._calls = 0

    def __call__(self, items: Sequence[Any]) -> Sequence[Any]:
        self.batches.append(list(items))
        self._calls += 1
        if self._calls == 1:
            self.entered.set()
            assert self.release.wait(WAIT), "never released"
        return self.answer(items)


def _race(gate: _Gated, group: GroupCommit, first: Any, others: Sequence[Any]) -> dict[Any, tuple[str, Any]]:
    """`first` is submitted and its batch held open while `others` are submitted and queue up; then released.
    Answers each item's ("ok", result) or ("error", exception), as seen by the thread that submitted it."""
    outcomes: dict[Any, tuple[str, Any]] = {}

    def call(item: Any) -> None:
        try:
            outcomes[item] = ("ok", group.submit(item))
        except BaseException as exc:  # the caller's own error, compared below
            outcomes[item] = ("error", exc)

    threads = [threading.Thread(target=call, args=(first,))]
    threads[0].start()
    assert gate.entered.wait(WAIT)
    threads += [threading.Thread(target=call, args=(item,)) for item in others]
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + WAIT
    while len(group._queue) < len(others):  # every other submitter has queued its item behind the held batch
        assert time.monotonic() < deadline, "the submitters did not queue"
        time.sleep(0.005)
    gate.release.set()
    for thread in threads:
        thread.join(timeout=WAIT)
        assert not thread.is_alive(), "a submitter never got its answer"
    return outcomes


def test_group_commit_when_threads_submit_while_a_batch_runs_then_each_gets_its_own_result_in_bounded_batches() -> None:
    gate = _Gated(lambda items: [item * 10 for item in items])
    group: GroupCommit[int, int] = GroupCommit(gate, max_batch=3)

    outcomes = _race(gate, group, 0, range(1, 8))

    assert outcomes == {item: ("ok", item * 10) for item in range(8)}
    sizes = [len(batch) for batch in gate.batches]
    assert max(sizes) <= 3, f"a batch exceeded max_batch: {gate.batches}"
    assert any(size > 1 for size in sizes), f"no submissions were decided together: {gate.batches}"
    # every item decided exactly once
    assert sorted(item for batch in gate.batches for item in batch) == list(range(8))


def test_group_commit_when_one_result_is_an_exception_then_only_its_caller_gets_it() -> None:
    refused = ValueError("item 2 refused")
    gate = _Gated(lambda items: [refused if item == 2 else item * 10 for item in items])
    group: GroupCommit[int, int] = GroupCommit(gate, max_batch=10)

    outcomes = _race(gate, group, 0, [1, 2, 3])

    assert [len(batch) for batch in gate.batches] == [1, 3]  # 1, 2 and 3 were in one batch
    assert outcomes[2] == ("error", refused)
    assert {item: outcomes[item] for item in (0, 1, 3)} == {0: ("ok", 0), 1: ("ok", 10), 3: ("ok", 30)}
    assert group.submit(4) == 40


def test_group_commit_when_the_batch_raises_then_every_caller_of_that_batch_gets_it_and_later_ones_work() -> None:
    boom = RuntimeError("the batch failed")

    def answer(items: Sequence[int]) -> list[int]:
        if 99 in items:
            raise boom
        return [item * 10 for item in items]

    gate = _Gated(answer)
    group: GroupCommit[int, int] = GroupCommit(gate, max_batch=10)

    outcomes = _race(gate, group, 0, [1, 99, 3])

    assert [len(batch) for batch in gate.batches] == [1, 3]
    assert outcomes[0] == ("ok", 0)  # the batch before is not touched
    assert {item: outcomes[item] for item in (1, 99, 3)} == dict.fromkeys((1, 99, 3), ("error", boom))
    # the leader lock was let go: later submissions are decided again
    assert group.submit(5) == 50
    assert group.submit(6) == 60


def test_group_commit_when_the_batch_answers_the_wrong_number_of_results_then_every_caller_gets_an_error() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda items: [], max_batch=4)
    with pytest.raises(RuntimeError, match="answered 0 results"):
        group.submit(1)
    assert GroupCommit(lambda items: [i + 1 for i in items], max_batch=4).submit(1) == 2


# --- orders_decide on PostgreSQL -------------------------------------------------------------------------------
BIG = Decimal("1e12")


def set_limits(**values: Any) -> None:
    limits = {"max_position_size": BIG, "max_daily_volume": BIG, "max_net_exposure": BIG, "max_gross_exposure": BIG}
    limits.update({name: Decimal(str(value)) for name, value in values.items()})
    store.firm_limits()
    RiskState.objects.get_or_create(pk=FIRM_STATE_ID)
    RiskLimits.objects.filter(scope="FIRM", scope_key="").update(**limits)


def order_events() -> list[tuple[Any, str]]:
    return list(Event.objects.filter(order_id__isnull=False).order_by("sequence").values_list("order_id", "event_type"))


@pytest.mark.postgres
@pytest.mark.django_db
def test_orders_decide_when_the_day_fits_two_of_three_then_two_approved_third_rejected_and_exact_reservations(
    trader,
) -> None:
    set_limits(max_daily_volume="1600")  # 10 @ 100 + 5 @ 120 = 1,600: exactly at the limit passes
    batch = [
        submission(trader, quantity=10, price=100),
        submission(trader, quantity=5, price=120, client_order_id="second"),
        submission(trader, symbol="BBB", quantity=1, price=1),  # fits alone, not after the two before it
    ]

    outcomes = orders_decide(batch)

    assert not any(isinstance(outcome, Exception) for outcome in outcomes)
    orders = [order for order, _ in outcomes]
    decisions = [decision for _, decision in outcomes]
    assert [d.approved for d in decisions] == [True, True, False]
    assert decisions[2].violations == (Violation.DAILY_VOLUME_LIMIT,)
    assert decisions[2].projected.daily_volume == Decimal("1601")
    stored = {o.pk: o for o in Order.objects.all()}
    assert [stored[o.pk].status for o in orders] == [OrderStatus.APPROVED, OrderStatus.APPROVED, OrderStatus.REJECTED]
    assert stored[orders[2].pk].rejection_reason == "Risk violations: DAILY_VOLUME_LIMIT"
    assert [stored[o.pk].execution_key for o in orders] == [s.key for s in batch]
    # reserved: exactly the two approved orders
    assert RiskState.objects.get().open_volume == Decimal("1600")
    aaa = Position.objects.get(scope="firm", symbol="AAA")
    assert (aaa.open_buy_quantity, aaa.open_buy_notional) == (Decimal(15), Decimal(1600))
    assert (aaa.open_sell_quantity, aaa.open_sell_notional) == (0, 0)
    assert not Position.objects.filter(scope="firm", symbol="BBB").exists()  # nothing reserved for the rejected order
    # three events per order, orders in submission order, each order's events with its own context
    expected = EventType.ORDER_CREATED, EventType.RISK_CHECK_STARTED
    assert order_events() == [
        (orders[0].pk, expected[0]),
        (orders[0].pk, expected[1]),
        (orders[0].pk, EventType.RISK_CHECK_PASSED),
        (orders[1].pk, expected[0]),
        (orders[1].pk, expected[1]),
        (orders[1].pk, EventType.RISK_CHECK_PASSED),
        (orders[2].pk, expected[0]),
        (orders[2].pk, expected[1]),
        (orders[2].pk, EventType.RISK_CHECK_FAILED),
    ]
    for sub, order in zip(batch, orders, strict=True):
        events = Event.objects.filter(order_id=order.pk)
        assert set(events.values_list("correlation_id", "address", "actor_username")) == {
            (sub.correlation_id, sub.address, trader.username)
        }
        assert order.correlation_id == sub.correlation_id


@pytest.mark.postgres
@pytest.mark.django_db
def test_orders_decide_when_a_sell_follows_a_buy_of_the_symbol_then_the_book_holds_both_sides(trader) -> None:
    set_limits()
    Position.objects.create(symbol="AAA", open_buy_quantity=2, open_buy_notional=200)
    RiskState.objects.filter(pk=FIRM_STATE_ID).update(open_volume=200)
    outcomes = orders_decide(
        [
            submission(trader, quantity=10, price=100),
            submission(trader, side="SELL", quantity=3, price=50),
            submission(trader, symbol="NEW", side="SELL", quantity=4, price=25),
        ]
    )
    assert [d.approved for _, d in outcomes] == [True, True, True]
    aaa = Position.objects.get(scope="firm", symbol="AAA")
    assert (aaa.open_buy_quantity, aaa.open_buy_notional, aaa.open_sell_quantity, aaa.open_sell_notional) == (
        12,
        1200,
        3,
        150,
    )
    new = Position.objects.get(scope="firm", symbol="NEW")
    assert (new.open_buy_quantity, new.open_sell_quantity, new.open_sell_notional) == (0, 4, 100)
    assert RiskState.objects.get().open_volume == Decimal(200 + 1000 + 150 + 100)


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("client_order_id", ["same-key", None], ids=["keyed", "keyless"])
def test_orders_decide_when_the_same_key_twice_in_a_batch_then_the_second_is_a_duplicate_and_one_order_written(
    trader, settings, client_order_id
) -> None:
    settings.ORDER_DUPLICATE_WINDOW_SECONDS = 5
    set_limits()
    first, again = (submission(trader, client_order_id=client_order_id) for _ in range(2))
    # a different order needs a client order id of its own (reusing one is a 409: tests/orders/test_lifecycle.py)
    other = submission(trader, symbol="CCC", client_order_id=client_order_id and f"{client_order_id}-2")
    assert first.key == again.key

    outcomes = orders_decide([first, again, other])

    assert isinstance(outcomes[1], DuplicateOrder)
    assert outcomes[1].details["order_id"] == str(outcomes[0][0].pk)  # the order the batch made first
    assert outcomes[0][1].approved and outcomes[2][1].approved
    assert list(Order.objects.order_by("created_at", "symbol").values_list("symbol", flat=True)) == ["AAA", "CCC"]
    assert Order.objects.filter(execution_key=first.key).count() == 1
    assert order_events() == [
        (order.pk, kind)
        for order in (outcomes[0][0], outcomes[2][0])
        for kind in (EventType.ORDER_CREATED, EventType.RISK_CHECK_STARTED, EventType.RISK_CHECK_PASSED)
    ]
    assert RiskState.objects.get().open_volume == Decimal(2000)  # the duplicate reserved nothing


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("client_order_id", ["in-db", None], ids=["keyed", "keyless"])
def test_orders_decide_when_the_key_is_already_in_the_database_then_duplicate_and_only_its_refusal_written(
    trader, settings, client_order_id
) -> None:
    settings.ORDER_DUPLICATE_WINDOW_SECONDS = 5
    set_limits()
    (done,) = orders_decide([submission(trader, client_order_id=client_order_id)])
    before = written()

    assert isinstance(orders_decide([submission(trader, client_order_id=client_order_id)])[0], DuplicateOrder)
    written_but_refusal(before, "duplicate_order", client_order_id)
    before = written()

    dup, fresh = orders_decide([submission(trader, client_order_id=client_order_id), submission(trader, symbol="DDD")])
    assert isinstance(dup, DuplicateOrder)
    assert dup.details == {
        "order_id": str(done[0].pk),
        "status": done[0].status,
        "correlation_id": str(done[0].correlation_id),
    }
    assert fresh[1].approved
    after = written()
    assert after["orders"] == before["orders"] + 1
    assert after["events"] == before["events"] + 1 + 3  # the duplicate's ORDER_REFUSED, the order's three
    assert after["open_volume"] == before["open_volume"] + 1000
    assert Order.objects.filter(execution_key=done[0].execution_key).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_orders_decide_when_the_window_is_zero_and_keyless_twice_in_a_batch_then_both_accepted_as_one_by_one(
    trader, settings
) -> None:
    """With ORDER_DUPLICATE_WINDOW_SECONDS = 0 identical key-less orders are never duplicates one by one
    (tests/orders/test_services.py); decided in one batch they must not be either."""
    settings.ORDER_DUPLICATE_WINDOW_SECONDS = 0
    set_limits()
    outcomes = orders_decide([submission(trader), submission(trader)])
    assert not isinstance(outcomes[1], DuplicateOrder), "a batch refused what one-by-one decisions accept"
    assert Order.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db
def test_orders_decide_when_the_write_fails_then_the_error_is_raised_and_nothing_is_written(
    trader, monkeypatch
) -> None:
    set_limits()
    orders_decide([submission(trader, symbol="OLD")])  # some state already there, which must stay as it is
    before = written()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(submission_module, "events_record_groups", broken)
    with pytest.raises(OSError, match="disk full"):
        orders_decide([submission(trader), submission(trader, symbol="EEE", side="SELL")])
    assert written() == before


@pytest.mark.postgres
@pytest.mark.django_db
def test_orders_decide_when_orders_are_approved_then_two_round_trips_before_the_commit(trader, monkeypatch) -> None:
    # The lock and its reads, then every write of the batch (the reservations, the orders, their events): the
    # reservations went in a round trip of their own, a third one while the risk lock was held.
    set_limits()
    orders_decide([submission(trader, symbol="OLD")])  # the statements' texts already seen once
    trips = round_trips(monkeypatch)
    outcomes = orders_decide([submission(trader), submission(trader, symbol="EEE", side="SELL")])

    assert [decision.approved for _, decision in outcomes] == [True, True]
    assert len(trips) == 2
    writes = " ".join(trips[1])
    assert all(f'"{model._meta.db_table}"' in writes for model in (Position, RiskState, Order, Event))
    position = Position.objects.get(scope="firm", symbol="EEE")
    assert (position.open_sell_quantity, position.open_sell_notional) == (Decimal(10), Decimal(1000))


# --- a batch decides what one-by-one decisions decide ----------------------------------------------------------
class _Rollback(Exception):
    """Raised to roll a case back: both runs of a case start from the same state."""


def _setup_case(rng: random.Random) -> Callable[[], None]:
    limits = {
        "max_position_size": rng.randrange(1000, 6000),
        "max_daily_volume": rng.randrange(4000, 30000),
        "max_net_exposure": rng.randrange(2000, 10000),
        "max_gross_exposure": rng.randrange(4000, 16000),
    }
    held = [
        (symbol, rng.randrange(-30, 30), rng.randrange(1, 200), rng.randrange(0, 20), rng.randrange(0, 20))
        for symbol in ("S1", "S2", "S3")
        if rng.random() < 0.4
    ]
    executed = rng.randrange(0, 3000)

    def setup() -> None:
        set_limits(**limits)
        open_volume = Decimal(0)
        for symbol, quantity, mark, open_buy, open_sell in held:
            Position.objects.create(
                symbol=symbol,
                quantity=quantity,
                mark_price=mark,
                open_buy_quantity=open_buy,
                open_buy_notional=open_buy * mark,
                open_sell_quantity=open_sell,
                open_sell_notional=open_sell * mark,
            )
            open_volume += (open_buy + open_sell) * mark
        RiskState.objects.filter(pk=FIRM_STATE_ID).update(
            trading_day=store.utc_today(), executed_volume=executed, open_volume=open_volume
        )

    return setup


def _random_submissions(rng: random.Random, user: Any) -> list[Submission]:
    subs: list[Submission] = []
    for i in range(rng.randrange(3, 9)):
        if subs and rng.random() < 0.1:
            subs.append(rng.choice(subs))  # the same order again: a duplicate, keyed or key-less
            continue
        subs.append(
            submission(
                user,
                symbol=rng.choice(["S1", "S2", "S3"]),
                side=rng.choice(["BUY", "SELL"]),
                quantity=rng.randint(1, 50),
                price=rng.randint(1, 200),
                client_order_id=f"k{i}" if rng.random() < 0.5 else None,
            )
        )
    return subs


def _run(setup: Callable[[], None], decide: Callable[[], list[Any]]) -> tuple[list[Any], list[Any], Decimal]:
    """Outcomes and the reservations they leave, rolled back afterwards."""
    found: dict[str, Any] = {}
    with pytest.raises(_Rollback), transaction.atomic():
        setup()
        found["outcomes"] = [
            "DUPLICATE"
            if isinstance(o, DuplicateOrder)
            else (o[0].status, o[1].violations, o[1].projected, o[0].rejection_reason)
            for o in decide()
        ]
        found["book"] = list(
            Position.objects.order_by("symbol").values_list(
                "symbol", "open_buy_quantity", "open_buy_notional", "open_sell_quantity", "open_sell_notional"
            )
        )
        found["open_volume"] = RiskState.objects.get().open_volume
        raise _Rollback
    return found["outcomes"], found["book"], found["open_volume"]


@pytest.mark.postgres
@pytest.mark.django_db
def test_orders_decide_when_a_batch_of_random_orders_then_same_decisions_and_reservations_as_one_by_one(
    trader, settings
) -> None:
    settings.ORDER_DUPLICATE_WINDOW_SECONDS = 5
    rng = random.Random(20240611)
    seen = {"mixed": 0, "duplicate": 0}
    for case in range(30):
        setup = _setup_case(rng)
        subs = _random_submissions(rng, trader)

        batched = _run(setup, lambda subs=subs: orders_decide(subs))
        one_by_one = _run(setup, lambda subs=subs: [orders_decide([s])[0] for s in subs])

        assert batched == one_by_one, f"case {case}: {subs}"
        statuses = {o if isinstance(o, str) else o[0] for o in batched[0]}
        seen["mixed"] += {OrderStatus.APPROVED, OrderStatus.REJECTED} <= statuses
        seen["duplicate"] += "DUPLICATE" in statuses
    assert Order.objects.count() == 0  # every case rolled back
    # the cases are not vacuous: many batches hold approvals after which an order is refused, some duplicates
    assert seen["mixed"] >= 10 and seen["duplicate"] >= 3, seen


@pytest.mark.postgres
@pytest.mark.django_db
def test_orders_decide_when_a_submission_has_no_address_then_its_events_do_not_take_the_leaders(trader) -> None:
    # The batch runs on the leader's thread, whose request context has an address of its own: a submission
    # made without one (not through HTTP) must not have its events recorded with the leader's address.
    from core import context

    context.bind(correlation=uuid.uuid4(), address="198.51.100.9")
    try:
        outcomes = orders_decide([submission(trader, address=None), submission(trader, symbol="BBB")])
    finally:
        context.bind(correlation=None, address=None)
    first, second = (order for order, _ in outcomes)
    assert set(Event.objects.filter(order_id=first.pk).values_list("address", flat=True)) == {None}
    assert set(Event.objects.filter(order_id=second.pk).values_list("address", flat=True)) == {"203.0.113.7"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_decide_batch_when_the_server_ended_the_connection_since_the_last_request_then_decided_once_on_a_new_one(
    trader, monkeypatch
) -> None:
    # Django's health check (a SELECT 1 at BEGIN, once per request) is the lock's read now: a connection the
    # server ended is found there, before anything was written, and the batch runs again on a new one.
    monkeypatch.setattr(submission_module, "enqueue", lambda *a, **k: True)
    set_limits()
    checks = health_checks(monkeypatch)
    db = connections[DEFAULT_DB_ALIAS]
    ended = db.connection.info.backend_pid
    batch = [submission(trader, client_order_id="after-restart")]  # its book read: the request's own statements
    as_a_new_request()
    server_ends(ended)

    (outcome,) = submission_module._decide_batch(batch)

    assert not isinstance(outcome, Exception) and outcome[1].approved
    assert db.connection.info.backend_pid != ended
    assert checks == []  # no SELECT 1 of Django's: the lock's read found the connection ended
    assert Order.objects.filter(client_order_id="after-restart").count() == 1
    assert Event.objects.filter(order_id=outcome[0].pk).count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_decide_batch_when_it_commits_then_one_execution_message_names_its_approved_orders(
    trader, settings, monkeypatch
) -> None:
    settings.EXECUTION_GROUP_MAX = 2
    sent: list[tuple[Any, Any]] = []
    monkeypatch.setattr(submission_module, "enqueue", lambda order_id, *a, **k: sent.append((order_id, k)) or True)
    set_limits(max_daily_volume="3000")
    batch = [
        submission(trader, quantity=10, price=100, client_order_id="m1"),
        submission(trader, quantity=10, price=100, client_order_id="m2"),
        submission(trader, quantity=50, price=100, client_order_id="m3"),  # over the day's volume: rejected
        submission(trader, quantity=5, price=100, client_order_id="m4"),
    ]

    outcomes = submission_module._decide_batch(batch)

    approved = [o[0].pk for o in outcomes if not isinstance(o, Exception) and o[1].approved]
    assert len(approved) == 3
    # one message per EXECUTION_GROUP_MAX approved orders: the first names the second (a wake-up: it takes the
    # orders waiting), the third goes alone
    assert sent == [
        (approved[0], {"with_ids": [approved[1]], "wake": True, "attempt": 1}),
        (approved[2], {"with_ids": [], "wake": False, "attempt": 1}),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_decide_batch_when_it_has_internal_venue_orders_then_each_of_those_has_its_own_message(
    trader, settings, monkeypatch
) -> None:
    # A group takes only SIM orders (orders.execution.executions_start): an INTERNAL order named by a SIM
    # order's message, or naming SIM orders in its own, was executed by no one until the sweeper, a minute on.
    settings.EXECUTION_GROUP_MAX = 4
    sent: list[tuple[Any, Any]] = []
    monkeypatch.setattr(submission_module, "enqueue", lambda order_id, *a, **k: sent.append((order_id, k)) or True)
    set_limits()
    batch = [
        submission(trader, venue="INTERNAL", time_in_force="GTC", client_order_id="i1"),
        submission(trader, client_order_id="s1"),
        submission(trader, venue="INTERNAL", time_in_force="GTC", client_order_id="i2"),
        submission(trader, client_order_id="s2"),
    ]

    outcomes = submission_module._decide_batch(batch)

    internal_1, sim_1, internal_2, sim_2 = (o[0].pk for o in outcomes if not isinstance(o, Exception))
    assert all(not isinstance(o, Exception) and o[1].approved for o in outcomes)
    assert sorted(sent, key=str) == sorted(
        [(sim_1, {"with_ids": [sim_2], "wake": True, "attempt": 1}), (internal_1, {}), (internal_2, {})], key=str
    )
