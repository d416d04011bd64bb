"""Input and output shapes of the market data API (API.md, "Instruments and market data").

A push is all or nothing: every row is checked, and the bad ones are named by their index in one 400, so a
feed fixes its whole batch at once. `price_rows` does that check; the view stores nothing unless it passes.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from core.exceptions import InvalidInput
from market.models import PRICE, SYMBOL_PATTERN, BarInterval

MAX_ROWS = 5000
MAX_PRICE = Decimal(10) ** (PRICE["max_digits"] - PRICE["decimal_places"])  # what the Mark columns hold
FUTURE_TOLERANCE = dt.timedelta(seconds=5)
SYMBOL_RE = re.compile(SYMBOL_PATTERN)


class PriceRowIn(serializers.Serializer):
    """One row of POST /market-data (documentation: the rows are checked by `price_rows`)."""

    symbol = serializers.CharField()
    last = serializers.DecimalField(max_digits=30, decimal_places=10)
    bid = serializers.DecimalField(max_digits=30, decimal_places=10, required=False, allow_null=True)
    ask = serializers.DecimalField(max_digits=30, decimal_places=10, required=False, allow_null=True)
    timestamp = serializers.DateTimeField(required=False, allow_null=True, help_text="ISO 8601 with offset; now")


class PricesIn(serializers.Serializer):
    prices = PriceRowIn(many=True)


class RejectedOut(serializers.Serializer):
    symbol = serializers.CharField()
    detail = serializers.CharField()


class PushOut(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = RejectedOut(many=True)


class QuoteOut(serializers.Serializer):
    symbol = serializers.CharField()
    bid = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True)
    ask = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True)
    last = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True)
    timestamp = serializers.DateTimeField(allow_null=True)
    # A field named like Field.source: DRF's metaclass takes declared fields out of the class, so it works.
    source = serializers.CharField(allow_null=True)  # type: ignore[assignment]
    stale = serializers.BooleanField()


class BarOut(serializers.Serializer):
    time = serializers.DateTimeField(source="start")
    open = serializers.DecimalField(max_digits=30, decimal_places=10)
    high = serializers.DecimalField(max_digits=30, decimal_places=10)
    low = serializers.DecimalField(max_digits=30, decimal_places=10)
    close = serializers.DecimalField(max_digits=30, decimal_places=10)


class HistoryOut(serializers.Serializer):
    symbol = serializers.CharField()
    interval = serializers.ChoiceField(choices=BarInterval.choices)
    bars = BarOut(many=True)
    truncated = serializers.BooleanField(help_text="more bars follow: ask again with since = the last bar's time")


class PriceRow:
    """A checked row."""

    __slots__ = ("symbol", "last", "bid", "ask", "timestamp")

    def __init__(self, symbol: str, last: Decimal, bid: Decimal | None, ask: Decimal | None, ts: dt.datetime):
        self.symbol, self.last, self.bid, self.ask, self.timestamp = symbol, last, bid, ask, ts


def _price(row: dict[str, Any], name: str, *, required: bool) -> Decimal | None:
    raw = row.get(name)
    if raw is None:
        if required:
            raise ValueError(f"{name} is required")
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, Decimal, str, float)):
        raise ValueError(f"{name} must be a number")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"{name} must be a number") from None
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number")
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    if value >= MAX_PRICE:
        raise ValueError(f"{name} is too large")
    return value


def _timestamp(raw: Any, now: dt.datetime) -> dt.datetime:
    if raw is None:
        return now
    try:
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
    except ValueError:  # well formed but no such time (month 13)
        parsed = None
    if parsed is None:
        raise ValueError("timestamp must be an ISO 8601 date and time")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("timestamp must carry a UTC offset (e.g. 'Z' or '+00:00')")
    if parsed - now > FUTURE_TOLERANCE:
        raise ValueError("timestamp is more than 5 seconds in the future")
    return parsed


def _row(raw: Any, now: dt.datetime) -> PriceRow:
    if not isinstance(raw, dict):
        raise ValueError("each price must be an object")
    unknown = set(raw) - {"symbol", "last", "bid", "ask", "timestamp"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    symbol = raw.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValueError("symbol is required")
    symbol = unicodedata.normalize("NFKC", symbol).strip().upper()
    if not SYMBOL_RE.fullmatch(symbol):
        raise ValueError("symbol must be 1-20 characters: capitals, digits, '.', '_', '/', '-'")
    last = _price(raw, "last", required=True)
    bid = _price(raw, "bid", required=False)
    ask = _price(raw, "ask", required=False)
    if bid is not None and ask is not None and bid > ask:
        raise ValueError("bid must not be above ask")
    assert last is not None
    return PriceRow(symbol, last, bid, ask, _timestamp(raw.get("timestamp"), now))


def price_rows(data: Any, now: dt.datetime) -> list[PriceRow]:
    """The body's rows, every one checked; InvalidInput naming each bad row by its index otherwise."""
    if not isinstance(data, dict) or not isinstance(data.get("prices"), list):
        raise InvalidInput("The body must be an object with a list `prices`.", code="invalid")
    raw_rows = data["prices"]
    if not raw_rows:
        raise InvalidInput("`prices` is empty.", code="invalid")
    if len(raw_rows) > MAX_ROWS:
        raise InvalidInput(f"At most {MAX_ROWS} prices per request.", code="invalid")
    rows: list[PriceRow] = []
    bad: dict[str, str] = {}
    for index, raw in enumerate(raw_rows):
        try:
            rows.append(_row(raw, now))
        except ValueError as exc:
            bad[str(index)] = str(exc)
    if bad:
        raise InvalidInput("Invalid prices; nothing was stored.", code="invalid", details={"rows": bad})
    return rows
