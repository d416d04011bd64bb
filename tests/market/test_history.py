"""Daily history (generate_history, load_history) and the pruning of 1-minute bars."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import Event, EventType
from market import history
from market.models import Bar
from market.tasks import bars_prune


def _daily(symbol: str) -> list[tuple[Any, ...]]:
    return list(
        Bar.objects.filter(symbol=symbol, interval="1d")
        .order_by("start")
        .values_list("start", "open", "high", "low", "close")
    )


def test_generate_history_ends_yesterday_at_the_initial_price(instruments: Any) -> None:
    call_command("generate_history", "--days", "60", "--seed", "42")
    bars = _daily("AAPL")
    assert len(bars) == 60
    yesterday = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)
    last_start, *_, last_close = bars[-1]
    assert last_start.date() <= yesterday and yesterday - last_start.date() < dt.timedelta(days=3)
    assert last_close == Decimal(148)
    assert all(start.weekday() < 5 and start.time() == dt.time(0) for start, *_ in bars)
    for _start, opened, high, low, close in bars:
        assert low <= opened <= high and low <= close <= high and low > 0
        assert opened % Decimal("0.01") == 0 and close % Decimal("0.01") == 0
    assert Bar.objects.filter(interval="1d").values("symbol").distinct().count() == len(instruments)


def test_generate_history_is_deterministic_and_idempotent(instruments: Any) -> None:
    call_command("generate_history", "--days", "30", "--seed", "7", "--symbols", "AAPL")
    first = _daily("AAPL")
    call_command("generate_history", "--days", "30", "--seed", "7", "--symbols", "AAPL")
    assert _daily("AAPL") == first and Bar.objects.count() == 30
    call_command("generate_history", "--days", "30", "--seed", "8", "--symbols", "AAPL")
    assert _daily("AAPL") != first and Bar.objects.count() == 30
    events = Event.objects.filter(event_type=EventType.MARKET_HISTORY_LOADED)
    assert events.count() == 3 and events.first().payload["bars"] == 30


def test_generated_daily_moves_match_the_volatility() -> None:
    days = history.trading_days(dt.date(2026, 11, 27), 2000)
    bars = history.generate(
        symbol="X", last_close=Decimal(100), volatility=Decimal("0.32"), tick=Decimal("0.0001"), days=days, seed=1
    )
    returns = [math.log(b.close / a.close) for a, b in zip(bars, bars[1:], strict=False)]
    assert 0.018 < statistics.pstdev(returns) < 0.022  # 0.32 / sqrt(252) = 0.0202


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "history.csv"
    path.write_text(text)
    return path


def test_load_history_upserts_daily_bars_and_records_one_event(instruments: Any, tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "symbol,date,open,high,low,close\nAAPL,2026-11-25,147,149,146,148\nmsft,2026-11-25,300,301,299,300.5\n",
    )
    call_command("load_history", str(path))
    call_command("load_history", str(path))
    assert Bar.objects.filter(interval="1d").count() == 2
    aapl = Bar.objects.get(symbol="AAPL")
    assert (aapl.start, aapl.close) == (dt.datetime(2026, 11, 25, tzinfo=dt.UTC), 148)
    event = Event.objects.filter(event_type=EventType.MARKET_HISTORY_LOADED).last()
    assert event.payload == {"symbols": 2, "bars": 2, "source": "file history.csv"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("NOPE,2026-11-25,1,1,1,1", "unknown instrument"),
        ("AAPL,25/11/2026,1,1,1,1", "not an ISO date"),
        ("AAPL,2026-11-25,0,1,0,1", "positive"),
        ("AAPL,2026-11-25,-1,1,1,1", "positive"),
        ("AAPL,2026-11-25,abc,1,1,1", "not a number"),
        ("AAPL,2026-11-25,NaN,1,1,1", "positive"),
        ("AAPL,2026-11-25,150,149,146,148", "low <= open, close <= high"),
        ("AAPL,2026-11-25,147,149,148,146", "low <= open, close <= high"),
        ("AAPL,2026-11-25,1,1,1", "6 columns"),
        ("AAPL,2026-11-24,147,149,146,148", "appears twice"),
    ],
)
def test_load_history_when_a_row_is_bad_then_whole_file_refused(
    instruments: Any, tmp_path: Path, line: str, message: str
) -> None:
    path = _csv(
        tmp_path, f"symbol,date,open,high,low,close\nAAPL,2026-11-24,147,149,146,148\n{line}\nMSFT,2026-11-24,1,1,1,1\n"
    )
    with pytest.raises(CommandError, match=f"row 3: .*{message}"):
        call_command("load_history", str(path))
    assert not Bar.objects.exists()
    assert not Event.objects.filter(event_type=EventType.MARKET_HISTORY_LOADED).exists()


def test_load_history_without_header(instruments: Any, tmp_path: Path) -> None:
    call_command("load_history", str(_csv(tmp_path, "AAPL,2026-11-25,147,149,146,148\n")))
    assert Bar.objects.count() == 1


def test_prune_deletes_old_minute_bars_and_keeps_daily_ones(instruments: Any, settings: Any) -> None:
    settings.MARKET_BAR_RETENTION_DAYS = 30
    now = timezone.now().replace(microsecond=0)
    for age, interval in [(40, "1m"), (29, "1m"), (40, "1d"), (400, "1d")]:
        Bar.objects.create(
            symbol="AAPL", interval=interval, start=now - dt.timedelta(days=age), open=1, high=1, low=1, close=1
        )
    assert bars_prune() == 1
    assert sorted(Bar.objects.values_list("interval", flat=True)) == ["1d", "1d", "1m"]
    assert Bar.objects.get(interval="1m").start == now - dt.timedelta(days=29)


def test_prune_is_scheduled_daily(settings: Any) -> None:
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "market.prune_bars")
    assert entry["schedule"] == 86400.0
