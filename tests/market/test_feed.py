"""The simulated feed (market.feed), the run_feed command, and the one price writer (market.prices)."""

from __future__ import annotations

import datetime as dt
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from market import prices
from market.feed import Anchor, SimulatedFeed
from market.models import Bar, Instrument, Mark
from market.prices import Quote
from tests.support.worker import ROOT, worker_env

T0 = dt.datetime(2026, 11, 27, 14, 30, 0, tzinfo=dt.UTC)
AAPL = Anchor("AAPL", Decimal("0.01"), Decimal(148))


def _path(feed: SimulatedFeed, anchor: Anchor, steps: int, start: Quote | None = None) -> list[Decimal]:
    held, path = start, []
    for i in range(steps):
        held = feed.next_quote(anchor, held, T0 + dt.timedelta(seconds=i))
        assert held is not None
        path.append(held.last)
    return path


# --- the walk, pure ----------------------------------------------------------------------------------------


def test_feed_when_same_seed_and_start_then_same_path() -> None:
    assert _path(SimulatedFeed(seed=7), AAPL, 300) == _path(SimulatedFeed(seed=7), AAPL, 300)


def test_feed_when_different_seed_then_path_differs() -> None:
    assert _path(SimulatedFeed(seed=7), AAPL, 300) != _path(SimulatedFeed(seed=8), AAPL, 300)


def test_feed_when_no_price_yet_then_first_price_is_initial_price() -> None:
    quote = SimulatedFeed().next_quote(AAPL, None, T0)
    assert quote is not None and quote.last == Decimal(148)
    assert (quote.bid, quote.ask) == (Decimal("147.99"), Decimal("148.01"))


@pytest.mark.parametrize(
    "anchor",
    [
        Anchor("ESH7", Decimal("0.25"), Decimal(5000)),
        Anchor("EURUSD", Decimal("0.0001"), Decimal("1.0850")),
        Anchor("AAPL", Decimal("0.01"), Decimal(148)),
    ],
)
def test_feed_prices_are_whole_ticks_and_bid_ask_one_tick_either_side(anchor: Anchor) -> None:
    feed, held = SimulatedFeed(seed=3), None
    for i in range(500):
        held = feed.next_quote(anchor, held, T0 + dt.timedelta(seconds=i))
        assert held is not None
        assert held.last % anchor.tick == 0
        assert (held.bid, held.ask) == (held.last - anchor.tick, held.last + anchor.tick)


def test_feed_over_many_steps_stays_in_a_band_around_its_anchor() -> None:
    path = [float(p) for p in _path(SimulatedFeed(seed=42), AAPL, 20_000)]
    assert all(148 * 0.97 < p < 148 * 1.03 for p in path)  # six stationary standard deviations
    assert abs(statistics.fmean(path) / 148 - 1) < 0.003
    assert 0.002 < statistics.pstdev(path) / 148 < 0.009  # about 0.5 %


def test_feed_when_far_from_anchor_then_pulled_back() -> None:
    start = Quote("AAPL", Decimal(160), T0, "api:feed")
    path = _path(SimulatedFeed(seed=1), AAPL, 1200, start=start)
    assert path[0] > Decimal(158)  # continues from the pushed price, no jump
    assert abs(path[-1] / 148 - 1) < Decimal("0.03")  # 20 half-lives later, back near the anchor


# --- the walk over the database ----------------------------------------------------------------------------


def _run(feed: SimulatedFeed, cycles: int) -> list[list[Quote]]:
    out = []
    for i in range(cycles):
        quotes = feed.quotes(T0 + dt.timedelta(seconds=i))
        prices.record(quotes)
        out.append(quotes)
    return out


def test_feed_through_the_database_when_same_seed_then_same_quotes(instruments: Any) -> None:
    first = _run(SimulatedFeed(seed=5), 20)
    Mark.objects.all().delete()
    Bar.objects.all().delete()
    assert _run(SimulatedFeed(seed=5), 20) == first
    assert {q.symbol for q in first[0]} == set(instruments)


def test_feed_when_a_price_was_pushed_then_walks_on_from_it(instruments: Any) -> None:
    feed = SimulatedFeed(seed=5, symbols=["AAPL"])
    _run(feed, 3)
    prices.record([Quote("AAPL", Decimal("155.00"), T0 + dt.timedelta(seconds=10), "api:vendor")])
    (quote,) = feed.quotes(T0 + dt.timedelta(seconds=11))
    assert abs(quote.last - Decimal(155)) < Decimal("0.5")


def test_feed_when_instrument_halted_then_no_quotes(instruments: Any) -> None:
    Instrument.objects.filter(symbol="AAPL").update(status="HALTED")
    Instrument.objects.filter(symbol="MSFT").update(status="RESTRICTED")
    symbols = {q.symbol for q in SimulatedFeed().quotes(T0)}
    assert "AAPL" not in symbols and "MSFT" in symbols


# --- the price writer ----------------------------------------------------------------------------------------


def test_record_upserts_the_mark_with_its_value(instruments: Any) -> None:
    prices.record([Quote("ESH7", Decimal("5000.25"), T0, "test", Decimal(5000), Decimal("5000.5"))])
    prices.record([Quote("ESH7", Decimal("5001"), T0 + dt.timedelta(seconds=1), "test")])
    mark = Mark.objects.get(symbol="ESH7")
    assert (mark.last, mark.bid, mark.factor, mark.unit_value) == (Decimal(5001), None, 50, Decimal(250050))


def test_record_when_quote_older_than_the_mark_then_mark_bar_close_and_redis_keep_the_newer(
    instruments: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        prices.record([Quote("AAPL", Decimal(150), T0 + dt.timedelta(seconds=30), "feed")])
    with django_capture_on_commit_callbacks(execute=True):
        prices.record([Quote("AAPL", Decimal(140), T0 + dt.timedelta(seconds=10), "late")])
    assert Mark.objects.get(symbol="AAPL").last == 150
    assert prices.latest(["AAPL"])["AAPL"].last == 150
    bar = Bar.objects.get(symbol="AAPL", interval="1m")
    assert (bar.open, bar.high, bar.low, bar.close) == (150, 150, 140, 150)


def test_record_on_a_new_utc_day_keeps_the_day_before_as_prev_close(instruments: Any) -> None:
    late = dt.datetime(2026, 11, 26, 23, 59, 50, tzinfo=dt.UTC)
    prices.record([Quote("AAPL", Decimal(149), late, "feed")])
    assert Mark.objects.get(symbol="AAPL").prev_close is None
    prices.record([Quote("AAPL", Decimal(151), late + dt.timedelta(seconds=20), "feed")])
    prices.record([Quote("AAPL", Decimal(152), late + dt.timedelta(seconds=40), "feed")])
    mark = Mark.objects.get(symbol="AAPL")
    assert (mark.prev_close, mark.last, mark.day) == (149, 152, dt.date(2026, 11, 27))


def test_record_folds_quotes_into_minute_bars(instruments: Any) -> None:
    for second, price in [(1, 100), (10, 105), (20, 98), (59, 101), (61, 102)]:
        prices.record([Quote("MSFT", Decimal(price), T0 + dt.timedelta(seconds=second), "feed")])
    first, second = Bar.objects.filter(symbol="MSFT", interval="1m").order_by("start")
    assert (first.start, first.open, first.high, first.low, first.close) == (T0, 100, 105, 98, 101)
    assert (second.open, second.close) == (102, 102)


def test_record_writes_redis_and_latest_reads_it(instruments: Any, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        prices.record([Quote("AAPL", Decimal("150.5"), T0, "feed", Decimal("150.49"), Decimal("150.51"))])
    assert prices._redis().hget(prices.REDIS_KEY, "AAPL") is not None
    Mark.objects.all().delete()  # so the answer can only come from Redis
    quote = prices.latest(["AAPL"])["AAPL"]
    assert (quote.last, quote.bid, quote.timestamp, quote.source) == (Decimal("150.5"), Decimal("150.49"), T0, "feed")


def test_record_when_the_caller_rolls_back_then_redis_untouched(
    instruments: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        prices.record([Quote("AAPL", Decimal("150.5"), T0, "feed")])
        raise RuntimeError("caller fails after recording")
    assert prices._redis().hget(prices.REDIS_KEY, "AAPL") is None
    assert not Mark.objects.exists()


def test_latest_when_no_redis_then_reads_the_database(
    instruments: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with override_settings(REDIS_URL=""):
        with django_capture_on_commit_callbacks(execute=True):
            prices.record([Quote("AAPL", Decimal("150.5"), T0, "feed")])
        assert prices.latest(["AAPL"])["AAPL"].last == Decimal("150.5")
    assert prices._redis().hget(prices.REDIS_KEY, "AAPL") is None


@pytest.mark.django_db(transaction=True)
def test_latest_when_redis_lacks_a_price_then_read_from_the_mark_once_and_put_in_redis(
    instruments: Any, django_assert_num_queries: Any
) -> None:
    # The venue reads a price per call from pool threads: with Redis flushed, each would open a database
    # connection for it, every time. Read once, then Redis answers.
    with override_settings(REDIS_URL=""):
        prices.record([Quote("AAPL", Decimal("150.5"), T0, "feed", Decimal("150.49"), Decimal("150.51"))])
    assert prices._redis().hget(prices.REDIS_KEY, "AAPL") is None
    with django_assert_num_queries(1):
        assert prices.latest(["AAPL"])["AAPL"].ask == Decimal("150.51")
    with django_assert_num_queries(0):
        quote = prices.latest(["AAPL"])["AAPL"]
    assert (quote.last, quote.bid, quote.ask, quote.timestamp) == (
        Decimal("150.5"),
        Decimal("150.49"),
        Decimal("150.51"),
        T0,
    )
    # A newer price recorded since is not replaced by an older one read through.
    prices.record([Quote("AAPL", Decimal("151"), T0 + dt.timedelta(seconds=1), "feed")])
    prices._redis_put([Quote("AAPL", Decimal("150.5"), T0, "feed")])
    assert prices.latest(["AAPL"])["AAPL"].last == Decimal("151")


def test_latest_inside_a_transaction_then_nothing_put_in_redis(instruments: Any) -> None:
    # A transaction may read a price it wrote and has not committed: it never reaches Redis from there.
    with override_settings(REDIS_URL=""):
        prices.record([Quote("AAPL", Decimal("150.5"), T0, "feed")])
    assert prices.latest(["AAPL"])["AAPL"].last == Decimal("150.5")
    assert prices._redis().hget(prices.REDIS_KEY, "AAPL") is None


def test_record_ignores_unknown_symbols(instruments: Any) -> None:
    assert prices.record([Quote("NOPE", Decimal(1), T0, "feed"), Quote("AAPL", Decimal(1), T0, "feed")]) == 1


# --- the command, as a process -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_run_feed_command_as_a_process_advances_the_marks(instruments: Any) -> None:
    cmd = [sys.executable, "manage.py", "run_feed", "--rate", "5", "--duration", "3", "--symbols", "AAPL", "MSFT"]
    proc = subprocess.run(cmd, cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    marks = {m.symbol: m for m in Mark.objects.all()}
    assert set(marks) == {"AAPL", "MSFT"}
    minutes = Bar.objects.filter(symbol="AAPL", interval="1m")
    assert minutes.exists()
    age = (dt.datetime.now(dt.UTC) - marks["AAPL"].timestamp).total_seconds()
    assert age < 5, "the last quote is a recent one"
    assert "feed_stopped" in proc.stdout + proc.stderr


@pytest.mark.django_db(transaction=True)
def test_run_feed_command_stops_cleanly_on_sigterm(instruments: Any) -> None:
    cmd = [sys.executable, "manage.py", "run_feed", "--rate", "5", "--symbols", "AAPL"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not Mark.objects.filter(symbol="AAPL").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        first = Mark.objects.get(symbol="AAPL").timestamp
        time.sleep(1)
        assert Mark.objects.get(symbol="AAPL").timestamp > first, "the mark advances"
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert b"feed_stopped" in out


@pytest.mark.django_db(transaction=True)
def test_run_feed_when_the_database_fails_a_cycle_then_logs_waits_and_goes_on(
    instruments: Any, monkeypatch: Any
) -> None:
    from django.db import OperationalError

    from market.management.commands import run_feed

    calls = {"n": 0}
    real = prices.record

    def flaky(quotes: Any) -> int:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real(quotes)

    monkeypatch.setattr(run_feed, "RETRY_SECONDS", (0.05,))
    monkeypatch.setattr(run_feed.prices, "record", flaky)
    call_command("run_feed", "--rate", "20", "--duration", "1", "--symbols", "AAPL")
    assert calls["n"] > 5
    assert Mark.objects.filter(symbol="AAPL").exists()
