"""Price history as bars: the demo's generated daily history, daily bars loaded from a file, the reads of
GET /market-data/{symbol}/history, and the pruning of old 1-minute bars.

Daily bars start at midnight UTC, weekdays only (a trading day's bar; the daily sigma is vol / sqrt(252)).
Writes upsert on (symbol, interval, start), so loading or generating twice leaves the same bars; each load
records one MARKET_HISTORY_LOADED event in the same transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from audit.models import EventType
from audit.services import event_record
from market.models import Bar, BarInterval, Instrument

MAX_BARS = 5000
TRADING_DAYS = 252


@dataclass(frozen=True, slots=True)
class DailyBar:
    symbol: str
    day: dt.date
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


class BadHistoryFile(ValueError):
    """A history file refused whole: the message names the first bad row."""


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def trading_days(last: dt.date, count: int) -> list[dt.date]:
    """The `count` weekdays up to and including `last` (or the weekday before it), oldest first."""
    days: list[dt.date] = []
    day = last
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= dt.timedelta(days=1)
    return days[::-1]


def _round(price: float, tick: Decimal, rounding: str) -> Decimal:
    ticks = (Decimal(repr(price)) / tick).quantize(Decimal(1), rounding=rounding)
    return max(ticks, Decimal(1)) * tick


def generate(
    *, symbol: str, last_close: Decimal, volatility: Decimal, tick: Decimal, days: Sequence[dt.date], seed: int
) -> list[DailyBar]:
    """Daily bars over `days` (oldest first) whose last close is `last_close`, walked backward by a geometric
    random walk with daily sigma volatility / sqrt(252). Pure and deterministic for a seed and symbol."""
    rng = random.Random(f"{seed}:{symbol}:history")
    sigma = float(volatility) / math.sqrt(TRADING_DAYS)
    closes = [float(last_close)]
    for _ in range(len(days) - 1):
        closes.append(closes[-1] * math.exp(-sigma * rng.gauss(0.0, 1.0)))
    closes.reverse()
    bars: list[DailyBar] = []
    for i, day in enumerate(days):
        close = last_close if i == len(days) - 1 else _round(closes[i], tick, ROUND_HALF_EVEN)
        # The open gaps a little from the day before's close; the range reaches beyond both.
        before = closes[i - 1] if i else closes[i] * math.exp(sigma * rng.gauss(0.0, 1.0))
        opened = _round(before * math.exp(0.25 * sigma * rng.gauss(0.0, 1.0)), tick, ROUND_HALF_EVEN)
        high = _round(
            max(float(opened), float(close)) * math.exp(abs(rng.gauss(0.0, 0.5)) * sigma), tick, ROUND_CEILING
        )
        low = _round(min(float(opened), float(close)) * math.exp(-abs(rng.gauss(0.0, 0.5)) * sigma), tick, ROUND_FLOOR)
        bars.append(DailyBar(symbol, day, opened, max(high, opened, close), min(low, opened, close), close))
    return bars


def _upsert(bars: Iterable[DailyBar]) -> int:
    rows = [
        Bar(symbol=b.symbol, interval=BarInterval.DAY, start=_start(b.day), open=b.open, high=b.high, low=b.low,
            close=b.close)
        for b in bars
    ]  # fmt: skip
    Bar.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["symbol", "interval", "start"],
        update_fields=["open", "high", "low", "close"],
    )
    return len(rows)


def history_generate(*, days: int = 520, seed: int = 42, symbols: Sequence[str] | None = None) -> tuple[int, int]:
    """The demo's daily history for every instrument with an initial price (or those named), ending
    yesterday (UTC) at the initial price. Answers (instruments, bars)."""
    instruments = Instrument.objects.exclude(initial_price=None).order_by("symbol")
    if symbols:
        instruments = instruments.filter(symbol__in=[s.upper() for s in symbols])
    yesterday = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)
    calendar = trading_days(yesterday, days)
    bars: list[DailyBar] = []
    count = 0
    for row in instruments.values_list("symbol", "initial_price", "volatility", "tick_size"):
        symbol, initial, vol, tick = row
        assert initial is not None  # excluded above
        bars += generate(symbol=symbol, last_close=initial, volatility=vol, tick=tick, days=calendar, seed=seed)
        count += 1
    with transaction.atomic():
        written = _upsert(bars)
        event_record(
            event_type=EventType.MARKET_HISTORY_LOADED,
            payload={"symbols": count, "bars": written, "source": f"generated (seed {seed}, {days} days)"},
        )
    return count, written


def _positive(raw: str, name: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise BadHistoryFile(f"{name} {raw!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise BadHistoryFile(f"{name} must be a positive number, not {raw!r}")
    return value


def read_daily_file(path: Path, known: set[str]) -> list[DailyBar]:
    """Every row of a CSV of symbol,date,open,high,low,close (a header line is optional), checked; the first
    bad row refuses the whole file (BadHistoryFile naming its row number, 1 = the file's first line)."""
    bars: list[DailyBar] = []
    seen: set[tuple[str, dt.date]] = set()
    with path.open(newline="", encoding="utf-8") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if number == 1 and row[0].strip().lower() == "symbol":
                continue
            try:
                bars.append(_daily_row(row, known, seen))
            except BadHistoryFile as exc:
                raise BadHistoryFile(f"row {number}: {exc}; nothing was loaded") from None
    return bars


def _daily_row(row: list[str], known: set[str], seen: set[tuple[str, dt.date]]) -> DailyBar:
    if len(row) != 6:
        raise BadHistoryFile(f"expected 6 columns (symbol,date,open,high,low,close), found {len(row)}")
    symbol = row[0].strip().upper()
    if symbol not in known:
        raise BadHistoryFile(f"unknown instrument {symbol!r}")
    try:
        day = dt.date.fromisoformat(row[1].strip())
    except ValueError:
        raise BadHistoryFile(f"date {row[1]!r} is not an ISO date (YYYY-MM-DD)") from None
    opened, high, low, close = (_positive(v, n) for v, n in zip(row[2:], ("open", "high", "low", "close"), strict=True))
    if not (low <= opened <= high and low <= close <= high):
        raise BadHistoryFile("prices must satisfy low <= open, close <= high")
    if (symbol, day) in seen:
        raise BadHistoryFile(f"{symbol} {day} appears twice")
    seen.add((symbol, day))
    return DailyBar(symbol, day, opened, high, low, close)


def history_load(*, path: Path) -> tuple[int, int]:
    """Load a daily history file whole or not at all (read_daily_file). Answers (instruments, bars)."""
    known = set(Instrument.objects.values_list("symbol", flat=True))
    bars = read_daily_file(path, known)
    with transaction.atomic():
        written = _upsert(bars)
        symbols = len({b.symbol for b in bars})
        event_record(
            event_type=EventType.MARKET_HISTORY_LOADED,
            payload={"symbols": symbols, "bars": written, "source": f"file {path.name}"},
        )
    return symbols, written


def bars(symbol: str, *, interval: str, since: dt.datetime, limit: int = MAX_BARS) -> tuple[list[Bar], bool]:
    """Bars of the instrument from `since`, oldest first, at most `limit`; and whether more follow."""
    rows = list(
        Bar.objects.filter(symbol=symbol, interval=interval, start__gte=since)
        .order_by("start")
        .only("start", "open", "high", "low", "close")[: limit + 1]
    )
    return rows[:limit], len(rows) > limit


def minute_bars_prune(*, older_than_days: int, now: dt.datetime | None = None) -> int:
    """Delete 1-minute bars that started more than `older_than_days` ago; daily bars are kept forever."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=older_than_days)
    deleted, _ = Bar.objects.filter(interval=BarInterval.MINUTE, start__lt=cutoff).delete()
    return deleted
