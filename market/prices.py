"""The latest prices: written by every source alike (the simulated feed, POST /market-data, history loads),
read by the API, the venue and the risk path.

`record(quotes)` is the one writer. In one transaction (one round trip on PostgreSQL) it upserts each quoted
instrument's Mark (an older quote never replaces a newer one; the first price of a new UTC day keeps the
day before's last as `prev_close`), revalues the instruments that depend on a quoted one (options on their
underlying, instruments priced in a currency whose FX pair was quoted), and folds the quotes into 1-minute
bars; then it puts the quotes in Redis (a hash, symbol -> quote) for readers that want no database.

Readers: `latest(symbols)` answers from Redis when the platform has one, else from the Mark rows (SQLite of
`make run`, which has no Redis). The risk path never calls it: it reads the Mark rows under the risk lock
in the same round trip as the rest of the decision's state (risk.store).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.sql import Statement, run
from market import directory
from market.models import Bar, BarInterval, Mark
from market.valuation import Terms, Value, value

logger = logging.getLogger("itirp.market")
REDIS_KEY = "itirp:market:last"


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    last: Decimal
    timestamp: dt.datetime
    source: str
    bid: Decimal | None = None
    ask: Decimal | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "last": str(self.last),
                "bid": None if self.bid is None else str(self.bid),
                "ask": None if self.ask is None else str(self.ask),
                # UTC with microseconds: the Redis writer compares timestamps as strings (_REDIS_NEWER).
                "timestamp": self.timestamp.astimezone(dt.UTC).isoformat(timespec="microseconds"),
                "source": self.source,
            }
        )

    @classmethod
    def from_json(cls, symbol: str, raw: str | bytes) -> Quote:
        data = json.loads(raw)
        return cls(
            symbol=symbol,
            last=Decimal(data["last"]),
            bid=None if data.get("bid") is None else Decimal(data["bid"]),
            ask=None if data.get("ask") is None else Decimal(data["ask"]),
            timestamp=dt.datetime.fromisoformat(data["timestamp"]),
            source=data["source"],
        )


def reporting_currency() -> str:
    return settings.REPORTING_CURRENCY


@lru_cache(maxsize=4)
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)


def _redis() -> Any:
    return _client(settings.REDIS_URL)


# Set each symbol's quote unless Redis holds a newer one (as the Mark upsert's WHERE does in the database):
# ARGV is symbol, UTC timestamp, JSON, repeated. Timestamps of the same format compare as strings.
_REDIS_NEWER = """
for i = 1, #ARGV, 3 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if (not held) or cjson.decode(held)['timestamp'] <= ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  end
end
return 0
"""


def _minute(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(dt.UTC).replace(second=0, microsecond=0)


def _value(terms: Terms, price: Decimal, last: dict[str, Decimal], today: dt.date) -> Value | None:
    return value(terms, price, last, reporting=reporting_currency(), today=today)


def record(quotes: Iterable[Quote]) -> int:
    """Store the quotes of known instruments (others are ignored: callers name them to their own clients);
    answers how many were stored. Runs in its own transaction unless the caller has one; Redis is written
    once that transaction commits (a rolled-back caller leaves no price there that the database lacks)."""
    all_terms = directory.all_terms()
    newest: dict[str, Quote] = {}
    for quote in quotes:
        if quote.symbol in all_terms or directory.terms(quote.symbol) is not None:
            held = newest.get(quote.symbol)
            if held is None or quote.timestamp >= held.timestamp:
                newest[quote.symbol] = quote
    if not newest:
        return 0
    all_terms = dict(directory.all_terms())  # a copy: another thread's reload clears the shared dict
    with transaction.atomic():
        stored = {symbol: (price, ts) for symbol, price, ts in Mark.objects.values_list("symbol", "last", "timestamp")}
        marks = {symbol: price for symbol, (price, _) in stored.items()}
        # A quote older than the stored mark (a late push) neither moves the mark nor values anything, and
        # folds into its minute's high and low without becoming that bar's close.
        late = {s for s, q in newest.items() if s in stored and q.timestamp < stored[s][1]}
        fresh = {s: q for s, q in newest.items() if s not in late}
        last = {**marks, **{symbol: quote.last for symbol, quote in fresh.items()}}
        today = timezone.now().astimezone(dt.UTC).date()
        upserts: list[tuple[Quote, Value]] = []
        for quote in fresh.values():
            valued = _value(all_terms[quote.symbol], quote.last, last, today)
            if valued is not None:
                upserts.append((quote, valued))
        # Instruments that depend on a quoted one: options on it, instruments priced in a currency it quotes.
        quoted = set(fresh)
        revalued: list[tuple[str, Value]] = []
        for symbol, terms in all_terms.items():
            if symbol in quoted or symbol not in marks:
                continue
            reporting = reporting_currency()
            pairs = {terms.currency + reporting, reporting + terms.currency} if terms.currency != reporting else set()
            if terms.underlying in quoted or pairs & quoted:
                valued = _value(terms, marks[symbol], last, today)
                if valued is not None:
                    revalued.append((symbol, valued))
        statements = [_upsert_marks(upserts, today)] if upserts else []
        if revalued:
            statements.append(_revalue(revalued))
        if fresh:
            statements.append(_fold_bars(list(fresh.values()), close=True))
        if late:
            statements.append(_fold_bars([newest[s] for s in late], close=False))
        run(statements)
        if settings.REDIS_URL and fresh:
            transaction.on_commit(lambda: _redis_put(list(fresh.values())))
    return len(newest)


def _redis_put(quotes: Sequence[Quote]) -> None:
    args: list[str] = []
    for q in quotes:
        args += [q.symbol, q.timestamp.astimezone(dt.UTC).isoformat(timespec="microseconds"), q.to_json()]
    try:
        _redis().eval(_REDIS_NEWER, 1, REDIS_KEY, *args)
    except Exception:  # noqa: BLE001 - the database holds the same; readers fall back to it
        logger.warning("market data: Redis unavailable, latest prices kept in the database only")


def _upsert_marks(rows: Sequence[tuple[Quote, Value]], today: dt.date) -> Statement:
    table = Mark._meta.db_table
    values, params = [], []
    for quote, valued in rows:
        values.append("(%s, %s, %s, %s, %s, %s, %s, %s, %s, NULL)")
        day = quote.timestamp.astimezone(dt.UTC).date()
        params += [
            quote.symbol,
            quote.last,
            quote.bid,
            quote.ask,
            quote.timestamp,
            quote.source,
            valued.factor,
            valued.unit_value,
            day,
        ]
    sql = (
        f'INSERT INTO "{table}" AS m ("symbol", "last", "bid", "ask", "timestamp", "source", "factor", '  # noqa: S608
        f'"unit_value", "day", "prev_close") VALUES {", ".join(values)} '
        'ON CONFLICT ("symbol") DO UPDATE SET "last" = excluded."last", "bid" = excluded."bid", '
        '"ask" = excluded."ask", "timestamp" = excluded."timestamp", "source" = excluded."source", '
        '"factor" = excluded."factor", "unit_value" = excluded."unit_value", '
        '"prev_close" = CASE WHEN m."day" < excluded."day" THEN m."last" ELSE m."prev_close" END, '
        '"day" = excluded."day" '
        'WHERE m."timestamp" <= excluded."timestamp"'
    )
    return Statement(sql, params)


def _revalue(rows: Sequence[tuple[str, Value]]) -> Statement:
    table = Mark._meta.db_table
    cases_f = " ".join(["WHEN %s THEN %s"] * len(rows))
    params: list[Any] = []
    for symbol, valued in rows:
        params += [symbol, valued.factor]
    for symbol, valued in rows:
        params += [symbol, valued.unit_value]
    symbols = [symbol for symbol, _ in rows]
    cast = "::numeric" if connection.vendor == "postgresql" else ""
    sql = (
        f'UPDATE "{table}" SET "factor" = (CASE "symbol" {cases_f} END){cast}, '  # noqa: S608
        f'"unit_value" = (CASE "symbol" {cases_f} END){cast} '
        f'WHERE "symbol" IN ({", ".join(["%s"] * len(symbols))})'
    )
    return Statement(sql, [*params, *symbols])


def _fold_bars(quotes: Sequence[Quote], *, close: bool) -> Statement:
    table = Bar._meta.db_table
    greatest, least = ("GREATEST", "LEAST") if connection.vendor == "postgresql" else ("MAX", "MIN")
    values, params = [], []
    for quote in quotes:
        values.append("(%s, %s, %s, %s, %s, %s, %s)")
        params += [
            quote.symbol,
            BarInterval.MINUTE.value,
            _minute(quote.timestamp),
            quote.last,
            quote.last,
            quote.last,
            quote.last,
        ]
    sql = (
        f'INSERT INTO "{table}" AS b ("symbol", "interval", "start", "open", "high", "low", "close") '  # noqa: S608
        f'VALUES {", ".join(values)} ON CONFLICT ("symbol", "interval", "start") DO UPDATE SET '
        f'"high" = {greatest}(b."high", excluded."high"), "low" = {least}(b."low", excluded."low"), '
        + ('"close" = excluded."close"' if close else '"close" = b."close"')
    )
    return Statement(sql, params)


def latest(symbols: Sequence[str]) -> dict[str, Quote]:
    """The latest quote of each symbol that has one: from Redis when configured (and up), else the database.

    Read-through: a symbol Redis lacks (flushed, restarted, never fed since) is read from its Mark and put in
    Redis, newer-only as `record` writes, so the next reader finds it there: the simulated venue reads a price
    per call, from pool threads that would otherwise open a database connection for each. Not from inside a
    transaction, whose reads may include a price it has written and not committed."""
    if settings.REDIS_URL and symbols:
        try:
            raw = _redis().hmget(REDIS_KEY, list(symbols))
            found = {s: Quote.from_json(s, r) for s, r in zip(symbols, raw, strict=True) if r is not None}
        except Exception:  # noqa: BLE001
            logger.warning("market data: Redis unavailable, reading the latest prices from the database")
        else:
            if len(found) == len(symbols):
                return found
            marks = _marks([s for s in symbols if s not in found])
            if marks and not connection.in_atomic_block:
                _redis_put(list(marks.values()))
            return {**found, **marks}
    return _marks(symbols)


def _marks(symbols: Sequence[str]) -> dict[str, Quote]:
    rows = Mark.objects.filter(symbol__in=list(symbols))
    return {m.symbol: Quote(m.symbol, m.last, m.timestamp, m.source, m.bid, m.ask) for m in rows}


def stale(quote: Quote | None, staleness_seconds: int, now: dt.datetime | None = None) -> bool:
    if quote is None:
        return True
    return ((now or timezone.now()) - quote.timestamp).total_seconds() > staleness_seconds
