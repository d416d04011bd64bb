"""The order lifecycle (issue 16): order types and time in force, fills as rows and partial fills, amend,
cancel reaching the venue, and the internal venue's price-time-priority book driven through the real order
path (decision, execution, fills booked under the risk lock). The matching core's own properties are in
tests/orders/test_matching.py."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal as D  # noqa: N817
from typing import Any

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit import replay
from audit.models import Event, EventType
from books.models import Book, Desk
from orders import execution, venue
from orders import internal as internal_venue
from orders.execution import Execution
from orders.models import Fill, InternalTrade, Order, OrderStatus
from orders.services import OrderNotAmendable, OrderNotCancellable, order_amend, order_cancel, scope_state_set
from orders.submission import OrderRequest, order_submit
from risk import services as risk_services
from risk.models import Position, RiskState
from risk.scopes import FIRM, Scope
from tests.support.market import price

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sync_execution(settings, tmp_path, monkeypatch):
    """Execution is called by the test (no broker): the queue is a list."""
    settings.REDIS_URL, settings.VAR_DIR = "", str(tmp_path)
    settings.VENUE_LATENCY_MS, settings.VENUE_MAX_SLIPPAGE, settings.VENUE_SCRIPT = 0, "0", ""
    settings.VENUE_SUCCESS_PROBABILITY = 1.0
    venue.venue.cache_clear()
    sent: list[Any] = []
    monkeypatch.setattr("orders.submission.enqueue", lambda *a, **k: sent.append(a) or True)
    monkeypatch.setattr(execution, "enqueue", lambda *a, **k: True)
    price("AAPL", "100")
    yield sent
    venue.venue.cache_clear()


@pytest.fixture
def other_book(trader2) -> Book:
    """trader2 trades in book OTHER (self-trade prevention keeps one book from trading with itself)."""
    desk = Desk.objects.get(code="EQ")
    book = Book.objects.create(code="OTHER", name="Other", desk=desk, currency="USD")
    assign_perm("books.trade_book", trader2, book)
    assign_perm("books.view_book", trader2, book)
    return book


_ids = itertools.count(1)


def send(user: Any, side: str = "BUY", quantity: str = "10", px: str | None = "100", **terms: Any) -> Order:
    """Decide an order, then run its execution (the task's work) once: at INTERNAL, its match."""
    terms.setdefault("client_order_id", f"lc-{next(_ids)}")
    order, decision = order_submit(
        user=user,
        request=OrderRequest(
            symbol=terms.pop("symbol", "AAPL"),
            side=side,
            quantity=D(quantity),
            price=None if px is None else D(px),
            **terms,
        ),
    )
    assert decision.approved, decision.message
    execution.order_execute(order_id=order.pk)
    order.refresh_from_db()
    return order


def internal(user: Any, side: str, quantity: str, px: str | None, tif: str = "GTC", **terms: Any) -> Order:
    return send(user, side, quantity, px, venue="INTERNAL", time_in_force=tif, **terms)


def events(order: Order, *types: str) -> list[Event]:
    qs = Event.objects.filter(order_id=order.pk).order_by("sequence")
    return list(qs.filter(event_type__in=types) if types else qs)


def open_buy(scope: str = "firm") -> D:
    row = Position.objects.filter(scope=scope, symbol="AAPL").first()
    return row.open_buy_quantity if row else D(0)


def open_sell(scope: str = "firm") -> D:
    row = Position.objects.filter(scope=scope, symbol="AAPL").first()
    return row.open_sell_quantity if row else D(0)


def replay_matches() -> None:
    state = replay.rebuild()
    assert state.anomalies == []
    assert replay.differences(state) == []
    assert internal_venue.replay_differences("AAPL") == []


# --- the internal venue through the order path -------------------------------------------------------------


def test_two_traders_cross_at_the_resting_price_and_both_books_move(trader, trader2, other_book) -> None:
    ask = internal(trader2, "SELL", "10", "101", book="OTHER")
    assert (ask.status, ask.resting_seq is not None) == (OrderStatus.APPROVED, True)
    assert [e.payload["venue"] for e in events(ask, EventType.ORDER_RESTING)] == ["INTERNAL"]

    bid = internal(trader, "BUY", "10", "102")

    ask.refresh_from_db()
    assert bid.status == ask.status == OrderStatus.EXECUTED
    assert bid.executed_price == ask.executed_price == D("101")  # the resting order's price, not the aggressor's
    (trade,) = InternalTrade.objects.all()
    assert (trade.aggressor_id, trade.resting_id, trade.price, trade.quantity) == (bid.pk, ask.pk, D(101), D(10))
    assert {f.venue_execution_id for f in Fill.objects.all()} == {f"INT-{trade.pk}-B", f"INT-{trade.pk}-S"}
    assert Position.objects.get(scope="book:MAIN", symbol="AAPL").quantity == D(10)
    assert Position.objects.get(scope="book:OTHER", symbol="AAPL").quantity == D(-10)
    assert Position.objects.get(scope="firm", symbol="AAPL").quantity == 0  # the firm crossed with itself
    assert open_buy() == open_sell() == 0  # both reservations released by the fills
    assert bid.leaves_quantity == ask.leaves_quantity == 0 and bid.resting_seq is None
    replay_matches()


def test_a_partial_fill_leaves_the_rest_resting_with_its_reservation_and_vwap_follows_each_fill(
    trader, trader2, other_book
) -> None:
    bid = internal(trader, "BUY", "10", "100")
    first = internal(trader2, "SELL", "4", "99", book="OTHER", tif="IOC")
    bid.refresh_from_db()
    assert first.status == OrderStatus.EXECUTED
    assert (bid.status, bid.executed_quantity, bid.leaves_quantity) == (OrderStatus.PARTIALLY_FILLED, 4, 6)
    assert open_buy() == D(6)  # only the rest is still reserved
    assert [e.payload["leaves_quantity"] for e in events(bid, EventType.ORDER_PARTIALLY_FILLED)] == ["6.00000000"]

    # the bid is amended up in price: it loses its time priority and trades again at its new price
    internal(trader2, "SELL", "6", "101", book="OTHER")
    order, decision = order_amend(actor=trader, order_id=bid.pk, price=D("101"))
    assert decision.approved
    bid.refresh_from_db()
    assert (bid.status, bid.executed_quantity, bid.leaves_quantity) == (OrderStatus.EXECUTED, 10, 0)
    assert bid.executed_price == D("100.6")  # (4 x 100 + 6 x 101) / 10: the resting prices, volume-weighted
    assert open_buy() == 0 and open_sell() == 0
    replay_matches()


def test_time_priority_within_a_price_and_price_priority_across_prices(trader, trader2, other_book) -> None:
    early = internal(trader2, "SELL", "5", "101", book="OTHER")
    late = internal(trader2, "SELL", "5", "101", book="OTHER")
    better = internal(trader2, "SELL", "5", "100.5", book="OTHER")
    internal(trader, "BUY", "7", "101", tif="IOC")
    early.refresh_from_db(), late.refresh_from_db(), better.refresh_from_db()
    assert better.status == OrderStatus.EXECUTED  # the better price first
    assert (early.status, early.leaves_quantity) == (OrderStatus.PARTIALLY_FILLED, 3)  # then the earlier order
    assert (late.status, late.leaves_quantity) == (OrderStatus.APPROVED, 5)


def test_ioc_rest_and_an_unfillable_fok_end_cancelled_and_release_what_they_held(trader, trader2, other_book) -> None:
    internal(trader2, "SELL", "3", "100", book="OTHER")
    ioc = internal(trader, "BUY", "10", "100", tif="IOC")
    assert (ioc.status, ioc.executed_quantity, ioc.leaves_quantity) == (OrderStatus.CANCELLED, 3, 0)
    assert events(ioc, EventType.ORDER_CANCELLED)[0].payload["code"] == "IOC"

    internal(trader2, "SELL", "3", "100", book="OTHER")
    fok = internal(trader, "BUY", "10", "100", tif="FOK")
    assert (fok.status, fok.executed_quantity) == (OrderStatus.CANCELLED, None)  # nothing at all traded
    assert open_buy() == 0
    assert Order.objects.filter(side="SELL", status=OrderStatus.APPROVED).count() == 1  # its liquidity untouched
    replay_matches()


def test_a_market_order_sweeps_the_book_within_its_protection_price(trader, trader2, other_book) -> None:
    internal(trader2, "SELL", "2", "100", book="OTHER")
    internal(trader2, "SELL", "2", "104", book="OTHER")
    internal(trader2, "SELL", "2", "106", book="OTHER")  # beyond 100 + 5 %
    risk_services.scope_limits_update(actor=None, scope=FIRM, changes={"price_collar_pct": D(5)}, reason="collar")
    market = internal(trader, "BUY", "10", None, order_type="MARKET", tif="IOC")
    assert market.price == D(100) and market.protection_price == D(105)  # checked at the reference price
    assert (market.status, market.executed_quantity) == (OrderStatus.CANCELLED, 4)
    assert events(market, EventType.ORDER_CANCELLED)[0].payload["code"] == "MARKET_NO_LIQUIDITY"
    assert market.executed_price == D(102)


def test_self_trade_prevention_cancels_the_newer_order_and_records_why(trader, trader2, other_book) -> None:
    mine = internal(trader, "SELL", "5", "100")
    again = internal(trader, "BUY", "5", "100")
    mine.refresh_from_db()
    assert mine.status == OrderStatus.APPROVED and mine.leaves_quantity == 5  # the resting one stays
    assert again.status == OrderStatus.CANCELLED and not InternalTrade.objects.exists()
    assert events(again, EventType.ORDER_CANCELLED)[0].payload["code"] == "SELF_TRADE"


def test_cancel_takes_a_resting_order_out_of_the_book_before_its_reservation_is_released(
    trader, trader2, other_book
) -> None:
    bid = internal(trader, "BUY", "10", "99")
    assert order_cancel(actor=trader, order_id=bid.pk).status == OrderStatus.CANCELLED
    bid.refresh_from_db()
    assert bid.resting_seq is None and open_buy() == 0
    seller = internal(trader2, "SELL", "10", "99", book="OTHER")
    assert seller.status == OrderStatus.APPROVED and not InternalTrade.objects.exists()


def test_halting_a_scope_cancels_its_resting_and_partly_filled_orders(trader, trader2, other_book) -> None:
    bid = internal(trader, "BUY", "10", "100")
    internal(trader2, "SELL", "4", "100", book="OTHER")
    _, cancelled = scope_state_set(actor=trader, scope=Scope.parse("book:MAIN"), state="HALTED", reason="drill")
    assert cancelled == [bid.pk]
    bid.refresh_from_db()
    assert (bid.status, bid.executed_quantity, bid.resting_seq) == (OrderStatus.CANCELLED, 4, None)
    assert open_buy() == 0
    replay_matches()


def test_day_orders_expire_at_the_end_of_their_utc_day_and_gtc_orders_stay(trader) -> None:
    day = internal(trader, "BUY", "10", "99", tif="DAY")
    gtc = internal(trader, "BUY", "10", "98", tif="GTC")
    Order.objects.filter(pk__in=[day.pk, gtc.pk]).update(created_at=timezone.now() - dt.timedelta(days=1))
    assert execution.orders_expire() == [day.pk]
    day.refresh_from_db(), gtc.refresh_from_db()
    assert (day.status, day.resting_seq) == (OrderStatus.EXPIRED, None)
    assert gtc.status == OrderStatus.APPROVED and open_buy() == D(10)


def test_the_sweeper_leaves_orders_resting_in_the_internal_book_alone(trader) -> None:
    bid = internal(trader, "BUY", "10", "99")
    assert execution.orders_sweep(stuck_after=0.0) == []
    assert not events(bid, EventType.ORDER_REQUEUED)


# --- amend ----------------------------------------------------------------------------------------------------


def test_amend_runs_every_check_again_and_a_refusal_leaves_the_order_as_it_was(trader, sync_execution) -> None:
    risk_services.risk_limits_update(actor=None, reason="cap", max_position_size=D(3000))  # a value at market
    order, _ = order_submit(user=trader, request=OrderRequest(symbol="AAPL", side="BUY", quantity=D(10), price=D(99)))
    amended, decision = order_amend(actor=trader, order_id=order.pk, quantity=D(20), price=D("99.5"))
    assert decision.approved and (amended.quantity, amended.price, amended.leaves_quantity) == (20, D("99.5"), 20)
    assert open_buy() == D(20)

    refused, decision = order_amend(actor=trader, order_id=order.pk, quantity=D(60))
    assert not decision.approved and "POSITION_LIMIT" in decision.message
    order.refresh_from_db()
    assert (order.quantity, order.price, order.leaves_quantity) == (20, D("99.5"), 20)  # as it was
    assert open_buy() == D(20)
    kinds = [e.event_type for e in events(order)][3:]
    assert kinds == [
        EventType.ORDER_AMEND_REQUESTED,
        EventType.ORDER_AMENDED,
        EventType.ORDER_AMEND_REQUESTED,
        EventType.ORDER_AMEND_REJECTED,
    ]
    assert events(order, EventType.ORDER_AMEND_REJECTED)[0].payload["violations"][0]["code"] == "POSITION_LIMIT"
    replay_matches()


def test_amend_of_a_filled_or_cancelled_order_is_409_and_below_the_filled_quantity_is_400(
    trader, trader2, other_book
) -> None:
    done = send(trader)
    assert done.status == OrderStatus.EXECUTED
    with pytest.raises(OrderNotAmendable):
        order_amend(actor=trader, order_id=done.pk, price=D(101))
    bid = internal(trader, "BUY", "10", "100")
    internal(trader2, "SELL", "4", "100", book="OTHER")
    before = Event.objects.count()
    with pytest.raises(Exception) as info:
        order_amend(actor=trader, order_id=bid.pk, quantity=D(4))
    assert getattr(info.value, "status_code", None) == 400 and Event.objects.count() == before
    order_cancel(actor=trader, order_id=bid.pk)
    with pytest.raises(OrderNotAmendable):
        order_amend(actor=trader, order_id=bid.pk, quantity=D(8))


# --- the simulated external venue -----------------------------------------------------------------------------


def test_seed_flow_unchanged_a_default_order_fills_whole_at_sim_with_one_fill(trader) -> None:
    order = send(trader)
    assert (order.status, order.venue, order.order_type, order.time_in_force) == ("EXECUTED", "SIM", "LIMIT", "DAY")
    (fill,) = order.fills.all()
    assert fill.venue_execution_id.startswith("SIM-") and order.leaves_quantity == 0


def test_a_repeated_fill_report_is_ignored_and_recorded(trader) -> None:
    order = send(trader)
    fill = order.fills.get()
    report = Execution(fill.venue, fill.venue_execution_id, fill.quantity, fill.price)
    execution.execution_complete(order_id=order.pk, fill=report)
    assert order.fills.count() == 1
    (ignored,) = events(order, EventType.FILL_DUPLICATE_IGNORED)
    assert ignored.payload["venue_execution_id"] == fill.venue_execution_id
    replay_matches()


def test_an_ioc_the_simulated_venue_cannot_fill_ends_cancelled_instead_of_resting(trader) -> None:
    order = send(trader, px="90", time_in_force="IOC")
    assert order.status == OrderStatus.CANCELLED and open_buy() == 0
    assert events(order, EventType.ORDER_CANCELLED)[0].payload["by"] == "venue"


def test_cancel_reaches_the_simulated_venue_and_one_it_already_filled_is_too_late(trader) -> None:
    resting = send(trader, px="90")  # below the market: rests
    assert resting.status == OrderStatus.APPROVED
    order_cancel(actor=trader, order_id=resting.pk)
    assert venue.venue().memory.marked("cancelled", str(resting.pk))

    order, _ = order_submit(user=trader, request=OrderRequest(symbol="AAPL", side="BUY", quantity=D(1), price=D(100)))
    from orders.venue import VenueOrder

    venue.venue().execute(
        VenueOrder(str(order.pk), "AAPL", "BUY", D(1), D(100)), timeout=5
    )  # the venue filled it; the worker died before booking
    with pytest.raises(OrderNotCancellable):
        order_cancel(actor=trader, order_id=order.pk)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.APPROVED
    assert RiskState.objects.get().open_volume > 0


def test_the_book_checked_by_replay_finds_a_trade_that_differs_from_its_messages(trader, trader2, other_book) -> None:
    internal(trader2, "SELL", "5", "101", book="OTHER")
    internal(trader2, "SELL", "5", "100", book="OTHER")
    internal(trader, "BUY", "7", "101")
    assert internal_venue.replay_differences("AAPL") == []
    first = InternalTrade.objects.order_by("id").first()
    InternalTrade.objects.filter(pk=first.pk).update(price=D("101"))  # the better price did not trade first?
    assert internal_venue.replay_differences("AAPL") == [
        f"trade 0: replayed {(str(first.aggressor_id), str(first.resting_id), D('100'), D('5'))}, "
        f"live {(str(first.aggressor_id), str(first.resting_id), D('101.00000000'), D('5.00000000'))}"
    ]
