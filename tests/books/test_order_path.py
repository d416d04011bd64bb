"""The order path with books: every order is checked against its book's, its desk's, its trader's and its
symbol's limits as well as the firm's (API.md, "Scoped limits and trading states").

(a) Eight processes race 200 orders against a book limit, then a desk limit: the accepted notional is never
over either, and no order that fits is refused. (b) For random books, orders and scoped limits, a batch
(orders_decide) decides exactly what one-by-one decisions would, and leaves the same reservations in every
scope. (c) After a mixed run over several books, the replay of the events equals the live rows of every
scope (audit/replay.py).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import transaction
from guardian.shortcuts import assign_perm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import replay
from books.models import Book, Desk
from orders.models import Order, OrderStatus
from orders.submission import DuplicateOrder, Submission, book_for, execution_key, order_submit, orders_decide
from risk import store
from risk.models import FIRM_STATE_ID, LimitScope, Position, RiskLimits, RiskState, ScopeState
from risk.scopes import Scope
from tests.audit.test_replay import START, _step
from tests.books.submitter import order_request
from tests.support.worker import ROOT, worker_env

BIG = Decimal("1e12")
FIRM_OPEN = {
    "max_position_size": BIG,
    "max_daily_volume": BIG,
    "max_net_exposure": BIG,
    "max_gross_exposure": BIG,
}
# Desk D1 holds books B1 and B2, desk D2 book B3.
LAYOUT = {"D1": ("B1", "B2"), "D2": ("B3",)}


def make_books(traders: Sequence[Any]) -> dict[str, Book]:
    """The desks and books of LAYOUT, every trader granted to trade and view every book."""
    books = {}
    for desk_code, codes in LAYOUT.items():
        desk = Desk.objects.create(code=desk_code, name=f"Desk {desk_code}")
        for code in codes:
            books[code] = Book.objects.create(code=code, name=f"Book {code}", desk=desk, currency="USD")
            for trader in traders:
                assign_perm("books.trade_book", trader, books[code])
                assign_perm("books.view_book", trader, books[code])
    return books


@pytest.fixture
def book_traders(make_user: Callable[..., Any]) -> list[Any]:
    """Two traders granted every book of LAYOUT, made once per test (not per hypothesis example: a user's
    password hash is slow). Fails at once, before any example, while requests cannot name a book."""
    order_request(book="B1", symbol="S1", side="BUY", quantity=Decimal(1), price=Decimal(1))
    traders = [make_user(f"bt-{i}") for i in range(2)]
    make_books(traders)
    return traders


def set_limit(scope: str, **values: Any) -> None:
    """The limits of one scope ("firm", "book:B1", ...): a RiskLimits row, null fields inheriting."""
    parsed = Scope.parse(scope)
    store.firm_limits()
    RiskState.objects.get_or_create(pk=FIRM_STATE_ID)
    RiskLimits.objects.update_or_create(
        scope=LimitScope(parsed.limit_scope), scope_key=parsed.key, defaults={k: Decimal(v) for k, v in values.items()}
    )


# --- (a) processes racing a book limit and a desk limit ---------------------------------------------------------
PROCESSES, PER_PROCESS = 8, 25  # 200 orders of 10 @ 100: 1,000 each
ORDER_NOTIONAL = Decimal(1000)


def _race(traders: Sequence[Any], books: str) -> list[dict[str, str]]:
    """PROCESSES submitter processes, started together, each sending PER_PROCESS orders round robin over
    `books`; answers every order's JSON line."""
    go = Path(tempfile.mkdtemp(prefix="itirp-books-race-")) / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.books.submitter",
                traders[i % len(traders)].username,
                str(PER_PROCESS),
                f"p{i}",
                str(go),
                books,
            ],
            cwd=ROOT,
            env=worker_env(LOG_LEVEL="WARNING"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        go.touch()
        outputs = [proc.communicate(timeout=180) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    lines = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        lines += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(lines) == PROCESSES * PER_PROCESS
    return lines


def _approved_notional(*codes: str) -> Decimal:
    approved = Order.objects.filter(book__code__in=codes, status=OrderStatus.APPROVED)
    return sum((o.quantity * o.price for o in approved), Decimal(0))


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("limited", "books", "fits", "inside", "outside"),
    [
        ("book:B1", "B1,B2", 37, ("B1",), ("B2",)),  # B2 shares B1's desk, not its limit
        ("desk:D1", "B1,B2,B3", 45, ("B1", "B2"), ("B3",)),  # B3 is in another desk
    ],
)
def test_submissions_when_8_processes_race_a_scope_limit_then_accepted_notional_never_over_it(
    book_traders: list[Any],
    _purge_queue: Any,
    limited: str,
    books: str,
    fits: int,
    inside: tuple[str, ...],
    outside: tuple[str, ...],
) -> None:
    set_limit("firm", **FIRM_OPEN)
    limit = fits * ORDER_NOTIONAL
    set_limit(limited, max_daily_volume=limit)

    lines = _race(book_traders, books)

    approved = _approved_notional(*inside)
    assert approved <= limit, f"{limited}: accepted {approved} over its limit {limit}"
    assert approved == limit, f"{limited}: an order that fit was refused ({approved} of {limit} accepted)"
    sent_outside = [line for line in lines if line["book"] in outside]
    assert all(line["status"] == OrderStatus.APPROVED for line in sent_outside), "another scope's limit applied"
    assert _approved_notional(*outside) == ORDER_NOTIONAL * len(sent_outside)
    rejected = Order.objects.filter(status=OrderStatus.REJECTED)
    assert rejected.count() == sum(1 for line in lines if line["book"] in inside) - fits
    assert set(rejected.values_list("book__code", flat=True)) <= set(inside)
    # the limited scope's reservations add up to exactly what it accepted, as do the firm's
    assert ScopeState.objects.get(scope=limited).open_volume == limit
    assert RiskState.objects.get().open_volume == approved + _approved_notional(*outside)


# --- (b) a batch decides as one by one, per scope ----------------------------------------------------------------
class _Rollback(Exception):
    """Raised to roll a run back: the batched and the one-by-one run start from the same state."""


SCOPES = ["book:B1", "book:B2", "book:B3", "desk:D1", "desk:D2", "trader:bt-0", "trader:bt-1", "symbol:S1"]
limits_strategy = st.lists(
    st.tuples(
        st.sampled_from(SCOPES),
        st.sampled_from(["max_daily_volume", "max_position_size", "max_order_quantity", "max_order_value"]),
        st.integers(1, 40).map(lambda n: n * 250),
    ),
    max_size=5,
)
orders_strategy = st.lists(
    st.tuples(
        st.integers(0, 1),  # trader
        st.sampled_from(["B1", "B2", "B3"]),
        st.sampled_from(["S1", "S2"]),
        st.sampled_from(["BUY", "SELL"]),
        st.integers(1, 30),  # quantity
        st.integers(1, 200),  # price
    ),
    min_size=2,
    max_size=8,
)


def _submissions(traders: Sequence[Any], orders: list[tuple[Any, ...]]) -> list[Submission]:
    subs = []
    for i, (who, book, symbol, side, quantity, price) in enumerate(orders):
        request = order_request(
            book=book,
            symbol=symbol,
            side=side,
            quantity=Decimal(quantity),
            price=Decimal(price),
            client_order_id=f"k{i}",
        )
        user = traders[who]
        subs.append(
            Submission(
                user=user,
                request=request,
                correlation_id=uuid.uuid4(),
                address="203.0.113.7",
                key=execution_key(user_id=user.pk, request=request),
                book=book_for(user, book),
            )
        )
    return subs


def _decided(limits: list[tuple[str, str, int]], decide: Callable[[], list[Any]]) -> dict[str, Any]:
    """The outcomes and the reservations of every scope they leave, rolled back afterwards."""
    found: dict[str, Any] = {}
    with pytest.raises(_Rollback), transaction.atomic():
        set_limit("firm", **FIRM_OPEN)
        for scope, name, value in limits:
            set_limit(scope, **{name: value})
        found["outcomes"] = [
            "DUPLICATE"
            if isinstance(o, DuplicateOrder)
            else (o[0].status, o[1].violations, o[1].projected, o[0].rejection_reason)
            for o in decide()
        ]
        found["positions"] = list(
            Position.objects.order_by("scope", "symbol").values_list(
                "scope", "symbol", "open_buy_quantity", "open_buy_notional", "open_sell_quantity", "open_sell_notional"
            )
        )
        found["scopes"] = list(ScopeState.objects.order_by("scope").values_list("scope", "open_volume"))
        found["firm_open_volume"] = RiskState.objects.get().open_volume
        raise _Rollback
    return found


@pytest.mark.postgres
@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(limits=limits_strategy, orders=orders_strategy)
def test_orders_decide_when_random_books_orders_and_scoped_limits_then_a_batch_decides_as_one_by_one(
    book_traders: list[Any], limits: list[tuple[str, str, int]], orders: list[tuple[Any, ...]]
) -> None:
    with transaction.atomic():
        subs = _submissions(book_traders, orders)
        batched = _decided(limits, lambda: orders_decide(subs))
        one_by_one = _decided(limits, lambda: [orders_decide([s])[0] for s in subs])
        assert batched == one_by_one
        transaction.set_rollback(True)


# --- (c) replay equals live per book after a mixed run ------------------------------------------------------------
book_submit = st.tuples(
    st.just("submit"),
    st.integers(0, 1),  # trader
    st.sampled_from(["B1", "B2", "B3"]),
    st.sampled_from(["AAPL", "MSFT"]),
    st.sampled_from(["BUY", "SELL"]),
    st.sampled_from([Decimal("1"), Decimal("7"), Decimal("10.5"), Decimal("0.12345678")]),
    st.sampled_from([Decimal("0.5"), Decimal("99.95"), Decimal("150.25")]),
)
on_order = st.tuples(
    st.sampled_from(["fill", "fill", "retry_fail", "final_fail", "fail", "cancel", "start"]),
    st.integers(0, 50),
    st.sampled_from([Decimal("-0.001"), Decimal("0"), Decimal("0.0007")]),
)
scope_limit = st.tuples(
    st.just("scope_limit"),
    st.sampled_from(["book:B1", "book:B3", "desk:D1", "trader:bt-1"]),
    st.sampled_from([Decimal("500"), Decimal("5000"), Decimal("1000000")]),
)
mixed_flows = st.builds(
    lambda opening, rest: opening + rest,
    st.lists(book_submit, min_size=2, max_size=4),
    st.lists(st.one_of(book_submit, on_order, on_order, scope_limit, st.tuples(st.just("next_day"))), max_size=30),
)


def _run_flow(flow: list[tuple[Any, ...]], traders: Sequence[Any], manager: Any) -> None:
    now = START
    for action in flow:
        if action[0] == "next_day":
            now += dt.timedelta(days=1)
            continue
        with time_machine.travel(now, tick=False):
            if action[0] == "submit":
                _, who, book, symbol, side, quantity, price = action
                request = order_request(book=book, symbol=symbol, side=side, quantity=quantity, price=price)
                try:
                    order_submit(user=traders[who], request=request)
                except DuplicateOrder:
                    pass
            elif action[0] == "scope_limit":
                set_limit(action[1], max_daily_volume=action[2])
            else:
                _step(action, traders[0], manager)
        now += dt.timedelta(seconds=7)  # past the duplicate window


@pytest.mark.postgres
@pytest.mark.django_db
def test_replay_when_a_mixed_run_over_several_books_then_every_scope_equals_live(
    book_traders: list[Any], risk_manager: Any
) -> None:
    # Test instruments (tests/support/market.py): valued at the orders' own prices, as the sums below are.
    flow = [
        ("submit", 0, "B1", "AAA", "BUY", Decimal("10"), Decimal("100")),  # 0: filled
        ("fill", 0, Decimal("0.0007")),
        ("submit", 1, "B2", "AAA", "SELL", Decimal("4"), Decimal("99.95")),  # 1: filled, same desk
        ("fill", 1, Decimal("0")),
        ("submit", 1, "B3", "BBB", "BUY", Decimal("7"), Decimal("150.25")),  # 2: open, other desk
        ("submit", 0, "B3", "BBB", "SELL", Decimal("1"), Decimal("150.25")),  # 3: cancelled
        ("cancel", 3, Decimal("0")),
        ("scope_limit", "book:B1", Decimal("500")),
        ("submit", 0, "B1", "AAA", "BUY", Decimal("10"), Decimal("100")),  # 4: rejected by B1's volume
        ("next_day",),
        ("submit", 0, "B2", "AAA", "BUY", Decimal("1"), Decimal("99.95")),  # 5: filled the next day
        ("fill", 5, Decimal("0")),
    ]
    _run_flow(flow, book_traders, risk_manager)
    statuses = [o.status for o in Order.objects.order_by("created_at")]
    assert statuses == ["EXECUTED", "EXECUTED", "APPROVED", "CANCELLED", "REJECTED", "EXECUTED"]
    state = replay.rebuild()
    assert replay.differences(state) == []
    assert state.positions[("book:B1", "AAA")].position.quantity == Decimal("10")
    assert state.positions[("book:B2", "AAA")].position.quantity == Decimal("-3")
    assert state.positions[("desk:D1", "AAA")].position.quantity == Decimal("7")
    assert state.scopes["desk:D2"].open_volume == Decimal("1051.75")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(flow=mixed_flows)
def test_replay_when_random_mixed_runs_over_several_books_then_every_scope_always_equals_live(
    book_traders: list[Any], risk_manager: Any, flow: list[tuple[Any, ...]]
) -> None:
    with transaction.atomic():
        _run_flow(flow, book_traders, risk_manager)
        assert replay.differences(replay.rebuild()) == []
        transaction.set_rollback(True)
