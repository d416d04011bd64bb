"""The internal venue's matching core (orders/matching.py): hand cases of each rule, and properties over random
message sequences checked against a naive reference book written here.

No database: nothing here requests a database fixture, so the suite's autouse market fixture stays idle and
the module runs the same under PostgreSQL and SQLite.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from decimal import Decimal as D  # noqa: N817 - the cases read better with a short name
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.matching import Incoming, OrderBook, Resting, Result
from tests.support.naive_book import NaiveBook

_seq = itertools.count(1)  # one increasing sequence for every book of this module: each book sees it increase


def order(
    order_id: str,
    side: str,
    quantity: Any,
    price: Any = None,
    *,
    tif: str = "GTC",
    owner: str | None = None,
    book: str | None = None,
    protection: Any = None,
) -> Incoming:
    """An incoming order; by default its owner and book are its own, so it never self-matches."""
    return Incoming(
        order_id=order_id,
        side=side,
        quantity=D(str(quantity)),
        price=None if price is None else D(str(price)),
        owner=owner or f"u-{order_id}",
        book=book or f"b-{order_id}",
        tif=tif,
        seq=next(_seq),
        protection=None if protection is None else D(str(protection)),
    )


def trades(result: Result | None) -> list[tuple[str, str, str, str]]:
    assert result is not None
    return [(t.aggressor_id, t.resting_id, str(t.price), str(t.quantity)) for t in result.trades]


def ids(book: OrderBook) -> list[str]:
    return [r.order_id for r in book.orders()]


def booked(*orders: Incoming) -> OrderBook:
    book = OrderBook("TEST")
    for incoming in orders:
        assert book.submit(incoming).rested
    return book


# -- priority and fills ------------------------------------------------------------------------------------


def test_buy_when_asks_at_several_prices_then_the_lowest_ask_fills_first() -> None:
    book = booked(order("a1", "SELL", 5, 101), order("a2", "SELL", 5, 100), order("a3", "SELL", 5, 102))
    assert trades(book.submit(order("b", "BUY", 5, 102))) == [("b", "a2", "100", "5")]
    book = booked(order("b1", "BUY", 5, 99), order("b2", "BUY", 5, 100), order("b3", "BUY", 5, 98))
    assert trades(book.submit(order("s", "SELL", 5, 98))) == [("s", "b2", "100", "5")]


def test_when_orders_share_a_price_then_the_earlier_fills_first() -> None:
    book = booked(order("a1", "SELL", 5, 100), order("a2", "SELL", 5, 100), order("a3", "SELL", 5, 100))
    assert trades(book.submit(order("b", "BUY", 7, 100))) == [("b", "a1", "100", "5"), ("b", "a2", "100", "2")]
    assert ids(book) == ["a2", "a3"]


def test_when_incoming_smaller_than_resting_then_resting_partially_filled_and_keeps_its_place() -> None:
    book = booked(order("a1", "SELL", 10, 100), order("a2", "SELL", 10, 100))
    result = book.submit(order("b", "BUY", 3, 100))
    assert (result.filled, result.leaves, result.rested, result.cancelled) == (D(3), D(0), False, None)
    assert [(r.order_id, r.quantity) for r in book.orders()] == [("a1", D(7)), ("a2", D(10))]


def test_limit_buy_sweeps_levels_up_to_its_price_then_rests_the_remainder() -> None:
    book = booked(order("a1", "SELL", 2, 100), order("a2", "SELL", 3, D("100.5")), order("a3", "SELL", 4, 102))
    result = book.submit(order("b", "BUY", 10, 101, tif="DAY"))
    assert trades(result) == [("b", "a1", "100", "2"), ("b", "a2", "100.5", "3")]
    assert (result.filled, result.leaves, result.rested, result.cancelled) == (D(5), D(5), True, None)
    assert (book.best_bid(), book.best_ask()) == (D(101), D(102))


def test_trade_price_is_always_the_resting_orders_price() -> None:
    book = booked(order("a", "SELL", 1, 100), order("b", "BUY", 1, 90))
    assert trades(book.submit(order("buy", "BUY", 1, 105))) == [("buy", "a", "100", "1")]
    assert trades(book.submit(order("sell", "SELL", 1, 80))) == [("sell", "b", "90", "1")]


def test_limit_that_does_not_cross_rests_without_trading() -> None:
    book = booked(order("a", "SELL", 1, 100))
    result = book.submit(order("b", "BUY", 1, D("99.99")))
    assert (result.trades, result.rested, result.leaves) == ((), True, D(1))
    assert (book.best_bid(), book.best_ask(), len(book)) == (D("99.99"), D(100), 2)


# -- time in force -----------------------------------------------------------------------------------------


def test_ioc_when_partly_fillable_then_trades_and_cancels_the_remainder() -> None:
    book = booked(order("a", "SELL", 4, 100))
    result = book.submit(order("b", "BUY", 10, 100, tif="IOC"))
    assert trades(result) == [("b", "a", "100", "4")]
    assert (result.filled, result.leaves, result.rested, result.cancelled) == (D(4), D(6), False, "IOC")
    assert "b" not in book and len(book) == 0


def test_ioc_when_nothing_crosses_then_cancelled_without_trades() -> None:
    book = booked(order("a", "SELL", 4, 100))
    result = book.submit(order("b", "BUY", 10, 99, tif="IOC"))
    assert (result.trades, result.leaves, result.cancelled) == ((), D(10), "IOC")
    assert ids(book) == ["a"]


def test_fok_when_enough_within_its_price_then_fills_entirely() -> None:
    book = booked(order("a1", "SELL", 4, 100), order("a2", "SELL", 6, 101), order("a3", "SELL", 9, 102))
    result = book.submit(order("b", "BUY", 10, 101, tif="FOK"))
    assert trades(result) == [("b", "a1", "100", "4"), ("b", "a2", "101", "6")]
    assert (result.filled, result.leaves, result.cancelled) == (D(10), D(0), None)


def test_fok_when_not_enough_within_its_price_then_no_trade_and_book_unchanged() -> None:
    book = booked(order("a1", "SELL", 4, 100), order("a2", "SELL", 6, 101), order("a3", "SELL", 9, 102))
    before = book.orders()
    result = book.submit(order("b", "BUY", 11, 101, tif="FOK"))
    assert (result.trades, result.filled, result.leaves, result.cancelled) == ((), D(0), D(11), "FOK")
    assert book.orders() == before


def test_fok_does_not_count_liquidity_behind_its_own_resting_order() -> None:
    book = booked(order("a1", "SELL", 4, 100), order("mine", "SELL", 6, 100, owner="u1"), order("a3", "SELL", 9, 100))
    result = book.submit(order("b", "BUY", 5, 100, tif="FOK", owner="u1"))
    assert (result.trades, result.cancelled) == ((), "FOK")
    # ahead of its own order there is enough: it fills, and never reaches the self-match
    assert book.submit(order("c", "BUY", 4, 100, tif="FOK", owner="u1")).filled == D(4)


def test_market_without_protection_sweeps_the_book_and_cancels_what_is_left() -> None:
    book = booked(order("a1", "SELL", 2, 100), order("a2", "SELL", 3, 150))
    result = book.submit(order("m", "BUY", 10, tif="DAY"))
    assert trades(result) == [("m", "a1", "100", "2"), ("m", "a2", "150", "3")]
    assert (result.filled, result.leaves, result.rested, result.cancelled) == (D(5), D(5), False, "MARKET_NO_LIQUIDITY")
    assert len(book) == 0


def test_market_with_protection_stops_at_the_collar_bound() -> None:
    book = booked(order("a1", "SELL", 2, 100), order("a2", "SELL", 3, 101), order("a3", "SELL", 3, 110))
    result = book.submit(order("m", "BUY", 10, protection=105))
    assert trades(result) == [("m", "a1", "100", "2"), ("m", "a2", "101", "3")]
    assert (result.leaves, result.cancelled) == (D(5), "MARKET_NO_LIQUIDITY")
    book = booked(order("b1", "BUY", 2, 100), order("b2", "BUY", 3, 95))
    result = book.submit(order("s", "SELL", 4, protection=98))
    assert trades(result) == [("s", "b1", "100", "2")]
    assert ids(book) == ["b2"]


def test_market_on_an_empty_side_trades_nothing() -> None:
    book = booked(order("b", "BUY", 1, 100))
    result = book.submit(order("m", "BUY", 3))
    assert (result.trades, result.leaves, result.cancelled) == ((), D(3), "MARKET_NO_LIQUIDITY")


def test_market_fok_is_refused_as_fok_and_market_ioc_as_no_liquidity() -> None:
    book = booked(order("a", "SELL", 2, 100))
    assert book.submit(order("m1", "BUY", 3, tif="FOK")).cancelled == "FOK"
    assert book.submit(order("m2", "BUY", 3, tif="IOC")).cancelled == "MARKET_NO_LIQUIDITY"


# -- self-trade prevention ---------------------------------------------------------------------------------


@pytest.mark.parametrize("same", ["owner", "book"])
def test_self_match_cancels_the_incoming_remainder_and_earlier_trades_stand(same: str) -> None:
    mine = {"owner": "u1"} if same == "owner" else {"book": "B1"}
    book = booked(order("other", "SELL", 3, 100), order("mine", "SELL", 5, 100, **mine), order("later", "SELL", 5, 99))
    result = book.submit(order("b", "BUY", 20, 100, tif="GTC", **mine))
    assert trades(result) == [("b", "later", "99", "5"), ("b", "other", "100", "3")]
    assert (result.filled, result.leaves, result.rested, result.cancelled) == (D(8), D(12), False, "SELF_TRADE")
    assert result.stp_cancelled == ()
    assert ids(book) == ["mine"] and book.get("mine") == book.orders()[0]


def test_self_match_at_the_front_of_the_book_trades_nothing() -> None:
    book = booked(order("mine", "BUY", 5, 100, owner="u1"), order("other", "BUY", 5, 100))
    result = book.submit(order("s", "SELL", 5, 100, owner="u1", tif="IOC"))
    assert (result.trades, result.cancelled) == ((), "SELF_TRADE")
    assert ids(book) == ["mine", "other"]


def test_own_order_beyond_the_limit_price_is_no_self_match() -> None:
    book = booked(order("mine", "SELL", 5, 101, owner="u1"))
    result = book.submit(order("b", "BUY", 5, 100, owner="u1"))
    assert (result.rested, result.cancelled) == (True, None)


# -- cancel and replace ------------------------------------------------------------------------------------


def test_cancel_takes_the_order_out_wherever_it_queues() -> None:
    book = booked(order("a1", "SELL", 1, 100), order("a2", "SELL", 2, 100), order("a3", "SELL", 3, 100))
    cancelled = book.cancel("a2")
    assert cancelled is not None and (cancelled.order_id, cancelled.quantity, cancelled.price) == ("a2", D(2), D(100))
    assert book.cancel("a2") is None and book.cancel("nope") is None
    assert ids(book) == ["a1", "a3"] and "a2" not in book and len(book) == 2
    assert book.depth() == ([], [(D(100), D(4), 2)])
    book.cancel("a1"), book.cancel("a3")
    assert (book.depth(), book.best_ask()) == (([], []), None)


def test_replace_with_less_quantity_keeps_time_priority() -> None:
    book = booked(order("a1", "SELL", 5, 100), order("a2", "SELL", 5, 100))
    result = book.replace("a1", quantity=D(2), seq=next(_seq))
    assert result == Result((), D(0), D(2), True, None)
    assert [(r.order_id, r.quantity) for r in book.orders()] == [("a1", D(2)), ("a2", D(5))]
    assert book.depth()[1] == [(D(100), D(7), 2)]


@pytest.mark.parametrize(
    ("quantity", "price", "queue"),
    [(D(6), None, ["a3", "a2", "a1"]), (None, D(101), ["a3", "a2", "a1"]), (D(5), D(99), ["a3", "a1", "a2"])],
)
def test_replace_with_more_quantity_or_a_new_price_loses_time_priority(
    quantity: D | None, price: D | None, queue: list[str]
) -> None:
    book = booked(order("a1", "SELL", 5, 100), order("a2", "SELL", 5, 100), order("a3", "SELL", 5, 99))
    seq = next(_seq)
    result = book.replace("a1", quantity=quantity, price=price, seq=seq)
    assert result is not None and (result.rested, result.trades, result.leaves) == (True, (), quantity or D(5))
    assert ids(book) == queue
    assert book.get("a1") == Resting("a1", "SELL", price or D(100), quantity or D(5), "u-a1", "b-a1", seq)


def test_replace_to_a_crossing_price_trades_and_rests_the_remainder() -> None:
    book = booked(order("b1", "BUY", 3, 99), order("b2", "BUY", 2, 98), order("a1", "SELL", 10, 101))
    result = book.replace("a1", price=D(98), seq=next(_seq))
    assert trades(result) == [("a1", "b1", "99", "3"), ("a1", "b2", "98", "2")]
    assert result is not None and (result.filled, result.leaves, result.rested) == (D(5), D(5), True)
    assert book.orders() == [Resting("a1", "SELL", D(98), D(5), "u-a1", "b-a1", book.orders()[0].seq)]


def test_replace_into_its_own_order_is_cancelled_as_self_trade() -> None:
    book = booked(order("mine", "BUY", 3, 99, book="B"), order("a1", "SELL", 10, 101, book="B"))
    result = book.replace("a1", price=D(99), seq=next(_seq))
    assert result is not None and (result.trades, result.cancelled, result.rested) == ((), "SELF_TRADE", False)
    assert ids(book) == ["mine"]


def test_replace_of_an_order_not_in_the_book_is_none() -> None:
    book = booked(order("a1", "SELL", 5, 100))
    book.submit(order("b", "BUY", 5, 100))
    assert book.replace("a1", quantity=D(1), seq=next(_seq)) is None


# -- depth, rebuild and guards -----------------------------------------------------------------------------


def test_depth_aggregates_each_price_best_first() -> None:
    book = booked(
        order("b1", "BUY", 1, 99),
        order("b2", "BUY", 2, 99),
        order("b3", "BUY", 4, 98),
        order("b4", "BUY", 8, 97),
        order("a1", "SELL", D("1.5"), 100),
        order("a2", "SELL", D("2.25"), 100),
        order("a3", "SELL", 1, 103),
    )
    assert book.depth(2) == ([(D(99), D(3), 2), (D(98), D(4), 1)], [(D(100), D("3.75"), 2), (D(103), D(1), 1)])
    assert book.depth()[0][-1] == (D(97), D(8), 1)
    assert book.depth(0) == ([], [])


def test_equal_prices_written_differently_share_one_level() -> None:
    # rows come back from the database with its scale ("100.00000000"); new orders come as the client wrote them
    book = OrderBook("TEST", [Resting("a1", "SELL", D("100.00000000"), D(1), "u1", "b1", next(_seq))])
    book.submit(order("a2", "SELL", 2, "100"))
    assert book.depth()[1] == [(D(100), D(3), 2)] and ids(book) == ["a1", "a2"]
    assert trades(book.submit(order("b", "BUY", 3, "100.0"))) == [
        ("b", "a1", "100.00000000", "1"),
        ("b", "a2", "100", "2"),
    ]
    assert (len(book), book.best_ask()) == (0, None)


def test_rebuild_from_rows_in_any_order_is_the_same_book() -> None:
    book = booked(order("a1", "SELL", 1, 100), order("b1", "BUY", 2, 99), order("a2", "SELL", 3, 100))
    rows = book.orders()
    rebuilt = OrderBook("TEST", reversed(rows))
    assert rebuilt.orders() == rows and rebuilt.depth() == book.depth()
    assert trades(rebuilt.submit(order("x", "BUY", 2, 100))) == [("x", "a1", "100", "1"), ("x", "a2", "100", "1")]


def test_guards_raise_value_error() -> None:
    book = booked(order("a", "SELL", 1, 100))
    bad = [
        order("a", "SELL", 1, 100),  # already resting
        order("z", "BUY", 0, 100),
        order("z", "BUY", -1, 100),
        order("z", "BUY", 1, 0),
        order("z", "BUY", 1, -5),
        order("z", "BUY", "NaN", 100),
        order("z", "HOLD", 1, 100),
        order("z", "BUY", 1, 100, tif="GTD"),
    ]
    for incoming in bad:
        with pytest.raises(ValueError):
            book.submit(incoming)
    late = order("late", "BUY", 1, 99)
    book.submit(order("now", "BUY", 1, 99))
    with pytest.raises(ValueError, match="seq"):
        book.submit(late)
    with pytest.raises(ValueError):
        book.replace("a", quantity=D(0), seq=next(_seq))
    with pytest.raises(ValueError, match="cross"):
        OrderBook(
            "TEST", [Resting("x", "BUY", D(101), D(1), "u", "b", 1), Resting("y", "SELL", D(100), D(1), "v", "c", 2)]
        )
    assert book.orders()[-1].order_id == "a" and len(book) == 2


def test_matching_core_imports_nothing_of_django() -> None:
    code = "import sys, orders.matching; assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')]"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- properties over random message sequences --------------------------------------------------------------

PARTIES = [("u1", "B1"), ("u2", "B2"), ("u3", "B3"), ("u1", "B4"), ("u4", "B2")]  # same owner, same book, neither
PRICES = [D(p) / 2 for p in range(194, 207)]  # 97.0 .. 103.0 by 0.5
quantities = st.integers(1, 20).map(lambda n: D(n) / 2)
prices = st.sampled_from(PRICES)

submits = st.tuples(
    st.just("submit"),
    st.sampled_from(["BUY", "SELL"]),
    quantities,
    st.one_of(prices, prices, prices, prices, st.none()),  # a fifth MARKET
    st.sampled_from(PARTIES),
    st.sampled_from(["DAY", "GTC", "GTC", "GTC", "IOC", "FOK"]),
    st.one_of(st.none(), prices),
)
recent = st.integers(0, 3)  # which order a cancel or replace targets: the k-th most recent submission
cancels = st.tuples(st.just("cancel"), recent)
replaces = st.tuples(st.just("replace"), recent, st.one_of(st.none(), quantities), st.one_of(st.none(), prices))
messages = st.lists(st.one_of(submits, submits, submits, cancels, replaces), min_size=20, max_size=150)

Message = tuple[Any, ...]


def calls_of(sequence: list[Message]) -> list[tuple[str, Any]]:
    """Generated messages as the book is called with them: seq = position + 1; a submission's id is "o<position>"; a
    cancel or replace targets a recent submission (resting, filled or cancelled by now), or "none" before any."""
    calls: list[tuple[str, Any]] = []
    submitted: list[str] = []
    for position, message in enumerate(sequence):
        seq = position + 1
        if message[0] == "submit":
            _, side, quantity, price, (owner, book), tif, protection = message
            submitted.append(f"o{position}")
            calls.append(("submit", Incoming(f"o{position}", side, quantity, price, owner, book, tif, seq, protection)))
            continue
        target = submitted[-1 - message[1] % len(submitted)] if submitted else "none"
        calls.append(
            ("cancel", target) if message[0] == "cancel" else ("replace", (target, message[2], message[3], seq))
        )
    return calls


def apply(book: Any, call: tuple[str, Any]) -> Any:
    kind, args = call
    if kind == "submit":
        return book.submit(args)
    if kind == "cancel":
        return book.cancel(args)
    target, quantity, price, seq = args
    return book.replace(target, quantity=quantity, price=price, seq=seq)


def run(book: Any, calls: list[tuple[str, Any]]) -> list[Any]:
    return [apply(book, call) for call in calls]


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(messages)
def test_book_is_never_crossed_after_any_message(sequence: list[Message]) -> None:
    book = OrderBook("TEST")
    for call in calls_of(sequence):
        apply(book, call)
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask
        assert book.best_bid() == (book.depth(1)[0][0][0] if bid is not None else None)
        assert len(book) == len(book.orders()) == sum(n for side in book.depth(10**6) for _, _, n in side)


@PROPERTY
@given(messages)
def test_quantity_is_conserved_per_order_filled_plus_resting_plus_cancelled(sequence: list[Message]) -> None:
    book = OrderBook("TEST")
    submitted: dict[str, D] = {}  # original quantity, moved by every amendment of the leaves
    filled: dict[str, D] = {}
    cancelled: dict[str, D] = {}
    for kind, args in calls_of(sequence):
        before = book.get(args[0]) if kind == "replace" else None
        result = apply(book, (kind, args))
        if kind == "cancel":
            if result is not None:
                cancelled[args] = cancelled.get(args, D(0)) + result.quantity
            continue
        if result is None:
            continue
        if kind == "submit":
            order_id, quantity = args.order_id, args.quantity
            submitted[order_id] = quantity
        else:
            assert before is not None
            order_id = args[0]
            quantity = result.filled + result.leaves
            submitted[order_id] += quantity - before.quantity
        assert result.filled + result.leaves == quantity
        assert sum(t.quantity for t in result.trades) == result.filled
        assert result.rested == (order_id in book)
        assert (result.cancelled is None) == (result.rested or not result.leaves)
        for trade in result.trades:
            assert trade.quantity > 0
            for party in (trade.aggressor_id, trade.resting_id):
                filled[party] = filled.get(party, D(0)) + trade.quantity
        if not result.rested:
            cancelled[order_id] = cancelled.get(order_id, D(0)) + result.leaves
    resting = {r.order_id: r.quantity for r in book.orders()}
    for order_id, quantity in submitted.items():
        total = filled.get(order_id, D(0)) + resting.get(order_id, D(0)) + cancelled.get(order_id, D(0))
        assert total == quantity, order_id


@PROPERTY
@given(messages)
def test_a_trade_is_at_the_resting_price_never_worse_than_the_limit_never_a_self_trade(sequence: list[Message]) -> None:
    book = OrderBook("TEST")
    for kind, args in calls_of(sequence):
        was = {r.order_id: r for r in book.orders()}
        result = apply(book, (kind, args))
        if kind == "cancel" or result is None:
            continue
        if kind == "submit":
            side, bound, owner, book_code = args.side, args.price or args.protection, args.owner, args.book
        else:
            amended = was[args[0]]
            side, bound, owner, book_code = amended.side, args[2] or amended.price, amended.owner, amended.book
        for trade in result.trades:
            resting = was[trade.resting_id]
            assert trade.price == resting.price and resting.side != side == trade.side
            assert bound is None or (trade.price <= bound if side == "BUY" else trade.price >= bound)
            assert resting.owner != owner and resting.book != book_code  # never a self-trade


@PROPERTY
@given(messages)
def test_the_same_messages_give_the_same_trades_and_book(sequence: list[Message]) -> None:
    first, second = OrderBook("TEST"), OrderBook("TEST")
    assert run(first, calls_of(sequence)) == run(second, calls_of(sequence))
    assert first.orders() == second.orders() and first.depth(100) == second.depth(100)


@PROPERTY
@given(messages, st.data())
def test_a_book_rebuilt_from_its_rows_at_any_point_continues_as_the_uninterrupted_one(
    sequence: list[Message], data: st.DataObject
) -> None:
    calls = calls_of(sequence)
    cut = data.draw(st.integers(0, len(calls)), label="cut")
    live = OrderBook("TEST")
    expected = run(live, calls)
    crashed = OrderBook("TEST")
    run(crashed, calls[:cut])
    rows = sorted(crashed.orders(), key=lambda r: r.order_id)  # rows come back from the database in any order
    rebuilt = OrderBook("TEST", rows)
    assert rebuilt.orders() == crashed.orders()
    assert run(rebuilt, calls[cut:]) == expected[cut:]
    assert rebuilt.orders() == live.orders()


@PROPERTY
@given(messages)
def test_the_book_matches_a_naive_reference_on_every_message(sequence: list[Message]) -> None:
    book, reference = OrderBook("TEST"), NaiveBook()
    for position, call in enumerate(calls_of(sequence)):
        assert apply(book, call) == apply(reference, call), position
        assert book.orders() == reference.orders(), position
