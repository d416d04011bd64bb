"""Replay equals live: a generated flow of submissions, rejections, fills, failures, cancels, kill switch and
limit changes (the real services, in one database) is rebuilt from the events alone and compared."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import replay
from audit.models import EventType
from audit.services import event_record
from books.models import Book as BookModel
from books.models import Desk
from orders import execution
from orders import services as order_services
from orders.models import Order, OrderStatus
from orders.services import OrderNotCancellable, order_cancel
from orders.submission import DuplicateOrder, OrderRequest, order_submit
from orders.venue import Execution
from risk import services as risk_services
from risk.models import FIRM_STATE_ID, Position, RiskState, ScopeState

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

START = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
SYMBOLS = ["AAA", "BBB", "CCC"]  # test instruments: any price, any quantity (tests/support/market.py)
QUANTITIES = [Decimal("1"), Decimal("7"), Decimal("10.5"), Decimal("250"), Decimal("0.12345678")]
PRICES = [Decimal("0.5"), Decimal("99.95"), Decimal("150.25"), Decimal("1234.56789")]
SLIPS = [Decimal("-0.001"), Decimal("0"), Decimal("0.0007")]

submit = st.tuples(
    st.just("submit"),
    st.sampled_from(SYMBOLS),
    st.sampled_from(["BUY", "SELL"]),
    st.sampled_from(QUANTITIES),
    st.sampled_from(PRICES),
)
on_order = st.tuples(
    st.sampled_from(["fill", "fill", "retry_fail", "final_fail", "fail", "cancel", "start"]),
    st.integers(0, 50),
    st.sampled_from(SLIPS),
)
control = st.one_of(
    st.tuples(st.just("kill"), st.booleans()),
    st.tuples(
        st.just("limits"),
        st.sampled_from(["max_position_size", "max_daily_volume", "max_net_exposure", "max_gross_exposure"]),
        st.sampled_from([Decimal("2000"), Decimal("50000"), Decimal("400000"), Decimal("10000000")]),
    ),
    st.tuples(st.just("next_day")),
)
flows = st.builds(
    lambda opening, rest: opening + rest,
    st.lists(submit, min_size=1, max_size=4),
    st.lists(st.one_of(submit, on_order, on_order, on_order, control), max_size=40),
)


def _pick(index: int) -> Order | None:
    orders = list(Order.objects.order_by("created_at", "pk"))
    return orders[index % len(orders)] if orders else None


def _step(action: tuple[Any, ...], trader: Any, manager: Any) -> None:
    kind = action[0]
    if kind == "submit":
        _, symbol, side, quantity, price = action
        try:
            order_submit(user=trader, request=OrderRequest(symbol=symbol, side=side, quantity=quantity, price=price))
        except DuplicateOrder:
            pass
    elif kind == "kill":
        order_services.kill_switch_set(actor=manager, enabled=action[1], reason="drill")
    elif kind == "limits":
        risk_services.risk_limits_update(actor=manager, reason="drill", **{action[1]: action[2]})
    elif kind in {"fill", "retry_fail", "final_fail", "fail", "cancel", "start"}:
        order = _pick(action[1])
        if order is None:
            return
        if kind == "cancel":
            try:
                order_cancel(actor=manager, order_id=order.pk, reason="drill")
            except OrderNotCancellable:
                pass
            return
        if kind == "fail":
            execution.execution_fail(order_id=order.pk, reason="drill")
            return
        started = execution.execution_start(order_id=order.pk)
        if started is None or kind == "start":
            return
        attempt = started.retry_count + 1
        if kind == "fill":
            price = (started.price * (1 + action[2])).quantize(Decimal("0.00000001"))
            fill = Execution(
                venue="SIMULATED", venue_execution_id=uuid.uuid4().hex, quantity=started.quantity, price=price
            )
            execution.execution_complete(order_id=order.pk, fill=fill, attempt=attempt)
        else:
            execution.execution_attempt_failed(
                order_id=order.pk, reason="venue unavailable", attempt=attempt, retry=kind == "retry_fail"
            )


@pytest.mark.slow
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(flow=flows)
def test_replay_always_equals_live(flow: list[tuple[Any, ...]], trader: Any, risk_manager: Any) -> None:
    with transaction.atomic():
        now = START
        for action in flow:
            if action[0] == "next_day":
                now += dt.timedelta(days=1)
                continue
            with time_machine.travel(now, tick=False):
                _step(action, trader, risk_manager)
            now += dt.timedelta(seconds=7)  # past the duplicate window
        state = replay.rebuild()
        assert replay.differences(state) == []
        transaction.set_rollback(True)


def test_replay_follows_every_order_path(trader: Any, risk_manager: Any) -> None:
    """One deterministic walk through each path, so each event type is exercised every run."""
    flow = [
        ("submit", "AAA", "BUY", Decimal("10"), Decimal("100")),  # 0: filled after a retried attempt
        ("retry_fail", 0, Decimal("0")),
        ("fill", 0, Decimal("0.0007")),
        ("submit", "AAA", "SELL", Decimal("3"), Decimal("101")),  # 1: left executing
        ("start", 1, Decimal("0")),
        ("submit", "BBB", "BUY", Decimal("7"), Decimal("99.95")),  # 2: final attempt fails
        ("final_fail", 2, Decimal("0")),
        ("submit", "BBB", "SELL", Decimal("1"), Decimal("99.95")),  # 3: failed while approved
        ("fail", 3, Decimal("0")),
        ("submit", "CCC", "BUY", Decimal("250"), Decimal("0.5")),  # 4: cancelled
        ("cancel", 4, Decimal("0")),
        ("submit", "CCC", "SELL", Decimal("2"), Decimal("0.5")),  # 5: cancelled by the kill switch
        ("kill", True),
        ("submit", "CCC", "SELL", Decimal("3"), Decimal("0.5")),  # 6: rejected by the switch
        ("kill", False),
        ("limits", "max_position_size", Decimal("2000")),
        ("submit", "AAA", "BUY", Decimal("250"), Decimal("150.25")),  # 7: rejected by the limit
        ("submit", "AAA", "SELL", Decimal("1"), Decimal("0.5")),  # 8: waiting for its second attempt
        ("retry_fail", 8, Decimal("0")),
    ]
    now = START
    for action in flow:
        with time_machine.travel(now, tick=False):
            _step(action, trader, risk_manager)
        now += dt.timedelta(seconds=7)
    statuses = [o.status for o in Order.objects.order_by("created_at")]
    assert statuses == [
        "EXECUTED",
        "EXECUTING",
        "FAILED",
        "FAILED",
        "CANCELLED",
        "CANCELLED",
        "REJECTED",
        "REJECTED",
        "APPROVED",
    ]
    state = replay.rebuild()
    assert [state.orders[o.pk].status for o in Order.objects.order_by("created_at")] == statuses
    assert state.open_volume == Decimal("303.5") and state.anomalies == []
    assert replay.differences(state) == []


def test_replay_sees_a_day_change_and_volume(trader: Any, risk_manager: Any) -> None:
    flow = [
        ("submit", "AAA", "BUY", Decimal("10"), Decimal("100")),
        ("fill", 0, Decimal("0")),
        ("next_day",),
        ("submit", "AAA", "SELL", Decimal("4"), Decimal("110")),
        ("fill", 1, Decimal("0.0007")),
    ]
    now = START
    for action in flow:
        if action[0] == "next_day":
            now += dt.timedelta(days=1)
            continue
        with time_machine.travel(now, tick=False):
            _step(action, trader, risk_manager)
        now += dt.timedelta(seconds=7)
    state = replay.rebuild()
    assert state.trading_day == (START + dt.timedelta(days=1)).date()
    assert state.executed_volume == Decimal("440")
    book = state.books["AAA"]
    assert book.position.quantity == Decimal("6") and book.position.realized_pnl == Decimal("40.30800000")
    assert replay.differences(state) == []
    assert Order.objects.filter(status=OrderStatus.EXECUTED).count() == 2


def test_replay_events_verify_reports_a_live_table_that_drifted(trader: Any, risk_manager: Any) -> None:
    with time_machine.travel(START, tick=False):
        _step(("submit", "BBB", "BUY", Decimal("5"), Decimal("99.95")), trader, risk_manager)
        _step(("fill", 0, Decimal("0")), trader, risk_manager)
        _step(("submit", "BBB", "BUY", Decimal("7"), Decimal("99.95")), trader, risk_manager)
    call_command("replay_events", "--verify")
    Position.objects.filter(scope="firm", symbol="BBB").update(quantity=F("quantity") + 1)
    Order.objects.filter(status=OrderStatus.APPROVED).update(status=OrderStatus.CANCELLED)
    with pytest.raises(CommandError, match="differs from the live tables in 2 places"):
        call_command("replay_events", "--verify")


def test_replay_events_prints_the_rebuilt_state(trader: Any, risk_manager: Any, capsys: Any) -> None:
    with time_machine.travel(START, tick=False):
        _step(("submit", "CCC", "SELL", Decimal("10.5"), Decimal("0.5")), trader, risk_manager)
    call_command("replay_events", "--orders")
    out = capsys.readouterr().out
    assert "position CCC: quantity 0" in out and "open_sell_quantity 10.5" in out
    assert "orders: APPROVED 1" in out


# --- Per scope: desks, books, traders and symbols ---------------------------------------------------------------
# The trail as the order path writes it (ORDER_CREATED names the book, its desk and the trader), folded
# without the order path: these run whatever the state of submission.
def _trail(*orders: tuple[Any, ...], day: dt.date = START.date()) -> list[dict[str, Any]]:
    """Events for orders given as (book, desk, trader, symbol, side, quantity, price, outcome[, fill price]);
    outcome: "open" (approved), "rejected", "cancelled" or "filled". book None: written before books."""
    events: list[dict[str, Any]] = []
    at = dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC)

    def add(kind: EventType, order_id: uuid.UUID | None, payload: dict[str, Any]) -> None:
        events.append(
            {"sequence": len(events) + 1, "event_type": kind, "order_id": order_id, "timestamp": at, "payload": payload}
        )

    for book, desk, trader, symbol, side, quantity, price, outcome, *fill in orders:
        order_id = uuid.uuid4()
        created = {"symbol": symbol, "side": side, "quantity": str(quantity), "price": str(price), "user_id": trader}
        if book is not None:
            created.update(book=book, desk=desk)
        add(EventType.ORDER_CREATED, order_id, created)
        if outcome == "rejected":
            add(EventType.RISK_CHECK_FAILED, order_id, {"violations": ["MAX_POSITION_SIZE"]})
            continue
        add(EventType.RISK_CHECK_PASSED, order_id, {})
        if outcome == "cancelled":
            add(EventType.ORDER_CANCELLED, order_id, {})
        elif outcome == "filled":
            add(EventType.EXECUTION_COMPLETED, order_id, {"fill_quantity": str(quantity), "fill_price": str(fill[0])})
    return events


MIXED = (
    ("B1", "D1", "alice", "AAPL", "BUY", Decimal("10"), Decimal("100"), "filled", Decimal("101")),
    ("B2", "D1", "bob", "AAPL", "SELL", Decimal("4"), Decimal("110"), "filled", Decimal("110")),
    ("B2", "D1", "alice", "MSFT", "BUY", Decimal("5"), Decimal("50"), "open"),
    ("B3", "D2", "bob", "MSFT", "SELL", Decimal("2"), Decimal("60"), "cancelled"),
    ("B3", "D2", "bob", "MSFT", "SELL", Decimal("3"), Decimal("70"), "rejected"),
)


def test_replay_when_orders_in_several_books_then_each_scope_has_its_own_position() -> None:
    state = replay.rebuild(_trail(*MIXED))
    quantity = {key: holding.position.quantity for key, holding in state.positions.items()}
    assert quantity[("firm", "AAPL")] == quantity[("desk:D1", "AAPL")] == Decimal("6")
    assert quantity[("book:B1", "AAPL")] == quantity[("trader:alice", "AAPL")] == Decimal("10")
    assert quantity[("book:B2", "AAPL")] == quantity[("trader:bob", "AAPL")] == Decimal("-4")
    assert ("desk:D2", "AAPL") not in state.positions and ("symbol:AAPL", "AAPL") not in state.positions
    assert state.positions[("firm", "AAPL")].position.realized_pnl == Decimal("36")
    assert state.positions[("book:B1", "AAPL")].position.realized_pnl == Decimal("0")
    # Each row's mark is its own last fill (the firm's, the desk's: bob's sale; alice's book: her purchase).
    assert state.positions[("firm", "AAPL")].mark_price == state.positions[("desk:D1", "AAPL")].mark_price == 110
    assert state.positions[("book:B1", "AAPL")].mark_price == Decimal("101")
    assert state.books["AAPL"] is state.positions[("firm", "AAPL")]
    for scope in ("firm", "desk:D1", "book:B2", "trader:alice"):
        msft = state.positions[(scope, "MSFT")]
        assert (msft.open_buy_quantity, msft.open_buy_notional) == (Decimal("5"), Decimal("250")), scope
    for scope in ("desk:D2", "book:B3", "trader:bob"):  # cancelled: reserved, then released
        msft = state.positions[(scope, "MSFT")]
        assert (msft.open_sell_quantity, msft.open_sell_notional) == (Decimal("0"), Decimal("0")), scope


def test_replay_when_orders_in_several_books_then_each_scope_has_its_own_volumes() -> None:
    state = replay.rebuild(_trail(*MIXED))
    volumes = {scope: (v.trading_day, v.executed_volume, v.open_volume) for scope, v in state.scopes.items()}
    day = START.date()
    assert volumes == {
        "desk:D1": (day, Decimal("1440"), Decimal("250")),
        "book:B1": (day, Decimal("1000"), Decimal("0")),
        "book:B2": (day, Decimal("440"), Decimal("250")),
        "trader:alice": (day, Decimal("1000"), Decimal("250")),
        "trader:bob": (day, Decimal("440"), Decimal("0")),
        "symbol:AAPL": (day, Decimal("1440"), Decimal("0")),
        "symbol:MSFT": (None, Decimal("0"), Decimal("250")),
        "desk:D2": (None, Decimal("0"), Decimal("0")),
        "book:B3": (None, Decimal("0"), Decimal("0")),
    }
    assert (state.executed_volume, state.open_volume) == (Decimal("1440"), Decimal("250"))


def test_replay_when_order_written_before_books_then_it_is_in_desk_eq_book_main() -> None:
    state = replay.rebuild(_trail((None, None, "trader1", "AAPL", "BUY", Decimal("2"), Decimal("100"), "open")))
    assert {scope for scope, _ in state.positions} == {"firm", "desk:EQ", "book:MAIN", "trader:trader1"}
    assert state.scopes["book:MAIN"].open_volume == Decimal("200") and state.anomalies == []


def test_replay_when_a_new_day_starts_then_only_the_scopes_that_fill_that_day_have_volume() -> None:
    first = _trail(("B1", "D1", "alice", "AAPL", "BUY", Decimal("1"), Decimal("100"), "filled", Decimal("100")))
    second = _trail(
        ("B2", "D1", "bob", "AAPL", "BUY", Decimal("2"), Decimal("100"), "filled", Decimal("100")),
        day=START.date() + dt.timedelta(days=1),
    )
    reset = {
        "event_type": EventType.DAILY_VOLUME_RESET,
        "order_id": None,
        "timestamp": second[0]["timestamp"],
        "payload": {
            "previous_day": START.date().isoformat(),
            "previous_volume": "100",
            "day": str(second[0]["timestamp"].date()),
        },
    }
    events = [*first, reset, *second]
    for sequence, event in enumerate(events, 1):
        event["sequence"] = sequence
    state = replay.rebuild(events)
    assert state.anomalies == [] and state.executed_volume == Decimal("200")
    assert state.scopes["book:B1"].trading_day == START.date()
    assert replay.day_volume(state.scopes["book:B1"], state.trading_day) == Decimal("0")
    assert replay.day_volume(state.scopes["book:B2"], state.trading_day) == Decimal("200")
    assert replay.day_volume(state.scopes["desk:D1"], state.trading_day) == Decimal("200")


def _live_from(state: replay.State) -> None:
    """Write the live tables a faithful order path would have left (the replayed state, row for row)."""
    for (scope, symbol), holding in state.positions.items():
        Position.objects.update_or_create(scope=scope, symbol=symbol, defaults=holding.values())
    for scope, volumes in state.scopes.items():
        ScopeState.objects.update_or_create(
            scope=scope,
            defaults={
                "trading_day": volumes.trading_day,
                "executed_volume": volumes.executed_volume,
                "open_volume": volumes.open_volume,
            },
        )
    RiskState.objects.update_or_create(
        pk=FIRM_STATE_ID,
        defaults={
            "trading_day": state.trading_day,
            "executed_volume": state.executed_volume,
            "open_volume": state.open_volume,
        },
    )


def test_replay_differences_name_the_scope_and_symbol_of_a_drifted_row(trader: Any) -> None:
    desk = Desk.objects.create(code="D1", name="Desk one")
    book = BookModel.objects.create(code="B1", name="Book one", desk=desk, currency="USD")
    order_id = uuid.uuid4()
    with transaction.atomic():
        Order.objects.create(
            id=order_id, user=trader, book=book, symbol="AAPL", side="BUY", quantity=Decimal("3"),
            price=Decimal("100"), status=OrderStatus.APPROVED, execution_key=uuid.uuid4().hex,
        )  # fmt: skip
        created = {"symbol": "AAPL", "side": "BUY", "quantity": "3", "price": "100", "user_id": trader.username}
        event_record(
            event_type=EventType.ORDER_CREATED, order_id=order_id, payload={**created, "book": "B1", "desk": "D1"}
        )
        event_record(event_type=EventType.RISK_CHECK_PASSED, order_id=order_id, payload={})
    state = replay.rebuild()
    _live_from(state)
    assert replay.differences(replay.rebuild()) == []
    call_command("replay_events", "--verify")
    Position.objects.filter(scope="book:B1", symbol="AAPL").update(open_buy_quantity=F("open_buy_quantity") + 1)
    ScopeState.objects.filter(scope="trader:trader1").update(open_volume=F("open_volume") - 1)
    Position.objects.filter(scope="desk:D1").delete()
    diffs = replay.differences(replay.rebuild())
    assert "position book:B1 AAPL.open_buy_quantity: live 4.00000000, replayed 3.00000000" in diffs
    assert "scope trader:trader1 open_volume: live 299.00000000, replayed 300.00000000" in diffs
    assert "position desk:D1 AAPL.open_buy_notional: live 0, replayed 300.00000000" in diffs
    assert not [line for line in diffs if line.startswith("position AAPL")]  # the firm's row still agrees
    with pytest.raises(CommandError, match="differs from the live tables in 4 places"):
        call_command("replay_events", "--verify")


def test_replay_events_prints_every_scope(capsys: Any) -> None:
    with transaction.atomic():
        for event in _trail(*MIXED):
            event_record(event_type=event["event_type"], order_id=event["order_id"], payload=event["payload"])
    call_command("replay_events")
    out = capsys.readouterr().out
    assert "position AAPL: quantity 6" in out and "position book:B2 AAPL: quantity -4" in out
    assert "scope desk:D1: trading_day" in out and "open_volume 250" in out
