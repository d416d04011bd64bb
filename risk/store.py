"""The risk state's storage: take the risk lock and read what a decision needs, reserve, release, book fills.

Scopes (risk.scopes): positions are kept per (scope, symbol) for the firm, each desk, book and trader, and
volumes per scope (RiskState for the firm, ScopeState for the others), each written with the others under
the lock, so a decision over every scope of a batch is still one round trip of reads and one of writes,
whatever the number of books.

Every risk decision and every change of exposure runs under one lock, the RiskState row (SELECT ... FOR
UPDATE on PostgreSQL; on SQLite the transaction itself is IMMEDIATE, settings.py). Lock order everywhere:
the RiskState row first, then Order rows by primary key, then Position rows (written only by holders of
the RiskState lock).

The speed of the submission path lives here and nowhere else: on PostgreSQL the lock and every read after
it go in one round trip (core.sql.pipelined), and a batch's reservations are one statement. The SQLite of
`make run` reads through the ORM and reserves with one UPDATE per symbol; CI runs the order path's tests
on both databases (`make test-sqlite`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from audit.models import EventType
from audit.services import EventGroup, EventSpec, events_record_groups
from books import directory
from core import pauses
from core.sql import Statement, one_of, rows_of, run
from market.models import Instrument, Mark
from risk import checks
from risk.models import (
    FIRM_DEFAULTS,
    FIRM_SCOPE,
    FIRM_STATE_ID,
    LimitScope,
    Position,
    RiskLimits,
    RiskState,
    ScopeState,
)
from risk.positions import PLACES, PositionState, apply_fill
from risk.scopes import Scope

ZERO = Decimal(0)
LIMIT_FIELDS = ("max_position_size", "max_daily_volume", "max_net_exposure", "max_gross_exposure")
CHECKED_LIMITS = (*LIMIT_FIELDS, "max_order_quantity", "max_order_value", "max_daily_loss", "price_collar_pct")
STATE_COLUMNS = ("id", "kill_switch_enabled", "trading_day", "executed_volume", "open_volume", "trading_state")
SCOPE_STATE_COLUMNS = ("scope", "trading_state", "trading_day", "executed_volume", "open_volume")
POSITION_COLUMNS = (
    "symbol",
    "quantity",
    "mark_price",
    "open_buy_quantity",
    "open_buy_notional",
    "open_sell_quantity",
    "open_sell_notional",
)


def utc_today(now: dt.datetime | None = None) -> dt.date:
    """The UTC trading day of `now` (default: the clock)."""
    return (now or timezone.now()).astimezone(dt.UTC).date()


def firm_limits() -> RiskLimits:
    limits, _ = RiskLimits.objects.get_or_create(scope=LimitScope.FIRM, scope_key="", defaults=FIRM_DEFAULTS)
    return limits


def lock() -> RiskState:
    """Take the lock that serialises every risk decision. Caller must be in a transaction.

    The lock alone: anything else the decision reads (limits, positions) is read by a later statement, so
    that, in READ COMMITTED, it sees what the lock's previous holder committed. (A subquery of this same
    statement would read from the snapshot taken before the wait for the lock: limits just lowered by the
    holder would be missed.)"""
    state = _firm_state_locked()
    if state is None:
        RiskState.objects.get_or_create(pk=FIRM_STATE_ID)
        state = RiskState.objects.select_for_update().get(pk=FIRM_STATE_ID)
    _timed()
    return state


def lock_with(statements: Sequence[Statement]) -> tuple[RiskState, list[list[tuple[Any, ...]] | None]]:
    """lock(), and the reads that need it held (each statement's rows, in order), in one round trip on
    PostgreSQL: they run after the lock is granted, each with its own snapshot, so they see what the lock's
    previous holder committed (lock's docstring). Caller must be in a transaction."""
    results = run([_firm_state_statement(), *statements])
    found = rows_of(RiskState, "s").instances(results[0] or [])
    if not found:  # a database where nothing took the lock yet: make the row, then read again under it
        return lock(), run(statements)
    _timed()
    return found[0], results[1:]


def _timed() -> None:
    # Where the lock is a row lock (PostgreSQL), its hold is timed to the commit and a long one reported
    # (core.pauses); SQLite's writer lock is the whole transaction, and the embedded mode has no load to watch.
    if connection.features.has_select_for_update:
        pauses.lock_taken()


def _firm_state_locked() -> RiskState | None:
    found = rows_of(RiskState, "s").instances(run([_firm_state_statement()])[0] or [])
    return found[0] if found else None


def _firm_state_statement() -> Statement:
    # Raw SQL, its text fixed: taken by every execution group and back-office change, where compiling the
    # same select_for_update queryset each time cost more CPU than the round trip (Django's raw queryset
    # still converts the row for each backend; SQLite has no FOR UPDATE and one writer).
    qn = connection.ops.quote_name
    columns = rows_of(RiskState, "s").columns
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT {columns} FROM {qn(RiskState._meta.db_table)} s WHERE s.{qn('id')} = %s{lock}"  # noqa: S608
    return Statement(sql, [FIRM_STATE_ID])


def _positions_locked(symbols: Sequence[str], scopes: Sequence[str]) -> list[Position]:
    """The (scope, symbol) position rows of a group's fills, locked in id order (as every writer locks them)."""
    qn = connection.ops.quote_name
    position_rows = rows_of(Position, "p")
    symbol_of, symbol_params = one_of(f"p.{qn('symbol')}", symbols)
    scope_of, scope_params = one_of(f"p.{qn('scope')}", scopes)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = (
        f"SELECT {position_rows.columns} FROM {qn(Position._meta.db_table)} p "  # noqa: S608 - our names
        f"WHERE {symbol_of} AND {scope_of} ORDER BY p.{qn('id')}{lock}"
    )
    return position_rows.instances(run([Statement(sql, [*symbol_params, *scope_params])])[0] or [])


@dataclass(frozen=True)
class OrderScopes:
    """The five scopes an order falls under, as strings; `positions` are those with position rows, in the
    order they are written, `volumes` those with a ScopeState row."""

    desk: str
    book: str
    trader: str
    symbol: str

    @classmethod
    def of(cls, *, desk: str, book: str, trader: str, symbol: str) -> OrderScopes:
        return cls(f"desk:{desk}", f"book:{book}", f"trader:{trader}", f"symbol:{symbol}")

    @property
    def all(self) -> tuple[str, ...]:
        return (FIRM_SCOPE, self.desk, self.book, self.trader, self.symbol)

    @property
    def positions(self) -> tuple[str, ...]:
        return (FIRM_SCOPE, self.desk, self.book, self.trader)

    @property
    def volumes(self) -> tuple[str, ...]:
        return (self.desk, self.book, self.trader, self.symbol)


@dataclass(frozen=True)
class Locked:
    """The risk lock held, the state the checks see, and the rows of the caller's own reads (in order)."""

    state: RiskState
    snapshot: checks.ScopedSnapshot
    rows: list[list[tuple[Any, ...]]]
    # The decided symbols' instruments and latest prices (absent: not an instrument).
    markets: dict[str, checks.Market] = field(default_factory=dict)

    @property
    def firm(self) -> checks.RiskSnapshot:
        return self.snapshot.views[FIRM_SCOPE]


def _limit_keys(scopes: Sequence[str]) -> tuple[list[str], list[str]]:
    kinds, keys = [], []
    for text in scopes:
        scope = Scope.parse(text)
        kinds.append(scope.limit_scope)
        keys.append(scope.key)
    return kinds, keys


def lock_and_read(
    *, scopes: Sequence[str] = (), symbols: Sequence[str] | None = None, also: Sequence[Statement] = ()
) -> Locked:
    """Take the risk lock, then read the limits, states, volumes and positions of the firm and `scopes`, and
    the caller's `also` statements, each read after the lock is held. PostgreSQL: one round trip, whatever
    the number of scopes, books or symbols held.

    With `symbols` (the symbols being decided) on PostgreSQL, only those symbols' rows are read, and each
    scope's exposure over all its other symbols comes summed by the database (checks.Totals, valued at the
    firm's marks); otherwise every row of every scope is read and summed here (SQLite, and callers that
    want the rows). Caller must be in a transaction."""
    wanted = list(dict.fromkeys([FIRM_SCOPE, *scopes]))
    others = [s for s in wanted if s != FIRM_SCOPE]
    holders = [s for s in wanted if not s.startswith("symbol:")]
    kinds, keys = _limit_keys(wanted)
    qn = connection.ops.quote_name
    pairs = [f"{kind}:{key}" for kind, key in zip(kinds, keys, strict=True)]
    limit_of, limit_params = one_of(f"{qn('scope')} || ':' || {qn('scope_key')}", pairs)
    state_of, state_params = one_of(qn("scope"), others or [""])
    today = utc_today()
    # ScopeState is read for the firm alone too (no row matches ''), so the answers keep their places.
    statements = [
        Statement(
            f"SELECT {', '.join(map(qn, STATE_COLUMNS))} FROM {qn(RiskState._meta.db_table)} "  # noqa: S608
            f"WHERE {qn('id')} = %s" + (" FOR UPDATE" if connection.features.has_select_for_update else ""),
            [FIRM_STATE_ID],
        ),
        Statement(
            f"SELECT {qn('scope')}, {qn('scope_key')}, {', '.join(map(qn, CHECKED_LIMITS))} "  # noqa: S608
            f"FROM {qn(RiskLimits._meta.db_table)} WHERE {limit_of}",
            limit_params,
        ),
        Statement(
            f"SELECT {', '.join(map(qn, SCOPE_STATE_COLUMNS))} FROM {qn(ScopeState._meta.db_table)} "  # noqa: S608
            f"WHERE {state_of}",
            state_params,
        ),
    ]
    summed = symbols is not None and connection.vendor == "postgresql"
    if summed:
        assert symbols is not None
        symbol_of, symbol_params = one_of('p."symbol"', symbols)
        holder_of, holder_params = one_of('p."scope"', holders)
        statements.append(_positions_statement(f"{holder_of} AND {symbol_of}", [*holder_params, *symbol_params], today))
        statements.append(
            Statement(
                _TOTALS_SQL.format(
                    table=qn(Position._meta.db_table), marks=qn(Mark._meta.db_table), scopes=holder_of, daily=_DAILY
                ),
                [today, *holder_params],
            )
        )
    else:
        holder_of, holder_params = one_of('p."scope"', holders)
        statements.append(_positions_statement(holder_of, holder_params, today))
    if symbols:
        statements.append(_markets_statement(symbols))
    state_rows, limit_rows, scope_rows, position_rows, *rows = run([*statements, *also])
    totals_rows = rows.pop(0) if summed else None
    market_rows = rows.pop(0) if symbols else None
    if not state_rows:  # a new database: the rows are created, under the lock, the ORM's way
        lock()
        firm_limits()
        return lock_and_read(scopes=scopes, symbols=symbols, also=also)
    _timed()
    pk, kill_switch, day, executed, open_volume, trading_state = state_rows[0]
    state = RiskState(
        id=pk,
        kill_switch_enabled=bool(kill_switch),
        trading_day=_date(day) if day else None,
        executed_volume=_decimal(executed),
        open_volume=_decimal(open_volume),
        trading_state=trading_state,
    )
    if not any(kind == LimitScope.FIRM for kind, *_ in limit_rows or ()):
        firm_limits()
        return lock_and_read(scopes=scopes, symbols=symbols, also=also)
    totals = daily = None
    if summed:
        totals = {scope: checks.Totals(*map(_decimal, values[:3])) for scope, *values in totals_rows or ()}
        daily = {scope: _decimal(values[3]) for scope, *values in totals_rows or ()}
    snapshot = _snapshot(state, wanted, limit_rows or [], scope_rows or [], position_rows or [], totals, daily)
    return Locked(state, snapshot, [r or [] for r in rows], _markets(market_rows or []))


def _positions_statement(where: str, params: list[Any], today: dt.date) -> Statement:
    """Position rows with the mark as one unit's value at market (the firm's last fill where the instrument
    has no price) and the row's P&L of the day."""
    sql = (
        'SELECT p."scope", p."symbol", p."quantity", COALESCE(m."unit_value", p."mark_price"), '  # noqa: S608
        'p."open_buy_quantity", p."open_buy_notional", p."open_sell_quantity", p."open_sell_notional", '
        f'{_DAILY} FROM "{Position._meta.db_table}" p '
        f'LEFT JOIN "{Mark._meta.db_table}" m ON m."symbol" = p."symbol" '
        f"CROSS JOIN (SELECT %s AS today) d WHERE {where}"
    )
    return Statement(sql, [today, *params])


def _markets_statement(symbols: Sequence[str]) -> Statement:
    symbol_of, params = one_of('i."symbol"', symbols)
    sql = (
        'SELECT i."symbol", i."status", i."tick_size", i."lot_size", i."staleness_seconds", i."asset_class", '  # noqa: S608
        'm."last", m."timestamp", m."factor", m."unit_value" '
        f'FROM "{Instrument._meta.db_table}" i LEFT JOIN "{Mark._meta.db_table}" m ON m."symbol" = i."symbol" '
        f"WHERE {symbol_of}"
    )
    return Statement(sql, params)


def _markets(rows: Any) -> dict[str, checks.Market]:
    markets = {}
    for symbol, status, tick, lot, staleness, asset_class, last, timestamp, factor, unit_value in rows:
        markets[symbol] = checks.Market(
            status=status,
            tick_size=_decimal(tick),
            lot_size=_decimal(lot),
            staleness_seconds=int(staleness),
            reference=_plain(last),
            reference_time=_datetime(timestamp),
            factor=_plain(factor),
            unit_value=_plain(unit_value),
            is_option=asset_class == "OPTION",
        )
    return markets


# A position row's P&L of the UTC day `d.today`, in the reporting currency, at market (m: the instrument's
# Mark): realised today + unrealised now - unrealised when the day began (the day before's close). A row not
# traded today: quantity x (price now - the day before's close). Without a close yet (prices began today),
# the unrealised P&L since entry counts; without any price, the last fill.
_CLOSE = 'COALESCE(CASE WHEN m."day" = d.today THEN m."prev_close" ELSE m."last" END, p."{fallback}")'
_NOW = 'COALESCE(m."last", p."mark_price", p."average_price")'
_DAILY = (
    'CASE WHEN p."pnl_day" = d.today THEN p."day_realized_pnl" + ('
    f'p."quantity" * ({_NOW} - p."average_price") - '
    f'p."sod_quantity" * ({_CLOSE.format(fallback="sod_average_price")} - p."sod_average_price")'
    ') * COALESCE(m."factor", 1) '
    f'ELSE p."quantity" * ({_NOW} - {_CLOSE.format(fallback="average_price")}) * COALESCE(m."factor", 1) END'
)

# Each scope's worst long, worst short and gross values over all its symbols, each unit at its value at market
# (checks.SymbolBook.worst_values, checks.Totals), and its P&L of the day: computed where the rows are, in
# one pass.
_TOTALS_SQL = """
SELECT p."scope", COALESCE(SUM(v.long), 0), COALESCE(SUM(v.short), 0),
       COALESCE(SUM(GREATEST(ABS(v.long), ABS(v.short))), 0), COALESCE(SUM(v.daily), 0)
FROM {table} p
CROSS JOIN (SELECT %s::date AS today) d
LEFT JOIN {table} f ON f."scope" = 'firm' AND f."symbol" = p."symbol"
LEFT JOIN {marks} m ON m."symbol" = p."symbol"
CROSS JOIN LATERAL (
    SELECT p."quantity" * COALESCE(m."unit_value", f."mark_price", 0) + p."open_buy_notional" AS long,
           p."quantity" * COALESCE(m."unit_value", f."mark_price", 0) - p."open_sell_notional" AS short,
           {daily} AS daily
) v
WHERE {scopes}
GROUP BY p."scope"
"""


def _decimal(value: Any) -> Any:
    # SQLite answers floats or ints for numeric columns through a raw cursor; PostgreSQL answers Decimal.
    return value if value is None or isinstance(value, Decimal) else Decimal(str(value))


def _date(value: Any) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value  # SQLite's raw cursor: text


def _default_collar() -> Decimal:
    return Decimal(str(settings.DEFAULT_PRICE_COLLAR_PCT))


def _plain(value: Any) -> Decimal | None:
    """A price or factor without its column's trailing zeros (1.0000000000 -> 1), never in exponent form, so
    that values computed from it keep the digits of the order's own numbers (15025.00, not 15025.0000000000)."""
    number = _decimal(value)
    if number is None:
        return None
    number = number.normalize()
    return number.quantize(Decimal(1)) if number.as_tuple().exponent > 0 else number


def _datetime(value: Any) -> dt.datetime | None:
    """A timestamp column read through a raw cursor, aware: SQLite answers naive UTC (a datetime, or text)."""
    if value is None:
        return None
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _snapshot(
    state: RiskState,
    scopes: Sequence[str],
    limit_rows: Any,
    scope_rows: Any,
    position_rows: Any,
    totals: dict[str, checks.Totals] | None = None,
    daily: dict[str, Decimal] | None = None,
) -> checks.ScopedSnapshot:
    limits = {f"{kind}:{key}": row for kind, key, *row in limit_rows}
    states = {row[0]: row for row in scope_rows}
    books: dict[str, list[checks.SymbolBook]] = {}
    marks: dict[str, Decimal | None] = {}
    firm_rows: dict[str, checks.SymbolBook] = {}
    row_daily: dict[tuple[str, str], Decimal] = {}
    summed_daily: dict[str, Decimal] = {}
    for scope, symbol, *values in position_rows:
        quantity, mark, bq, bn, sq, sn, pnl = (_decimal(v) for v in values)
        row = checks.SymbolBook(symbol, quantity, mark, bq, bn, sq, sn)
        row_daily[scope, symbol] = pnl or ZERO
        summed_daily[scope] = summed_daily.get(scope, ZERO) + (pnl or ZERO)
        if scope == FIRM_SCOPE:
            marks[symbol] = mark
            firm_rows[symbol] = row
        books.setdefault(scope, []).append(row)
    if daily is None:  # every row of every scope was read: the sums are exact
        daily = summed_daily
    today = state.trading_day or utc_today()
    views: dict[str, checks.RiskSnapshot] = {}
    for text in scopes:
        scope = Scope.parse(text)
        limit_row = limits.get(f"{scope.limit_scope}:{scope.key}")
        scope_limits = checks.Limits(*(_decimal(v) for v in limit_row)) if limit_row else checks.Limits()
        if scope.kind == "firm":
            if scope_limits.price_collar_pct is None and settings.DEFAULT_PRICE_COLLAR_PCT:
                scope_limits = replace(scope_limits, price_collar_pct=_default_collar())
            views[text] = checks.RiskSnapshot(
                limits=scope_limits,
                kill_switch_active=state.kill_switch_enabled,
                trading_day=today,
                executed_volume=_decimal(state.executed_volume),
                open_volume=_decimal(state.open_volume),
                books=tuple(books.get(text, ())),
                scope=text,
                state=state.trading_state,
                totals=totals.get(text, checks.Totals()) if totals is not None else None,
                daily_pnl=daily.get(text, ZERO),
            )
            continue
        volumes = states.get(text)
        held: tuple[checks.SymbolBook, ...]
        scope_totals: checks.Totals | None = None
        if scope.kind == "symbol":
            held = (firm_rows[scope.key],) if scope.key in firm_rows else ()
            if totals is not None:
                scope_totals = checks.Totals(*checks.Totals.part(held[0] if held else None))
        else:  # valued at the firm's marks, the same price for every scope
            held = tuple(
                b if b.mark_price == marks.get(b.symbol) else replace(b, mark_price=marks.get(b.symbol))
                for b in books.get(text, ())
            )
            if totals is not None:
                scope_totals = totals.get(text, checks.Totals())
        views[text] = checks.RiskSnapshot(
            limits=scope_limits,
            kill_switch_active=False,
            trading_day=_date(volumes[2]) if volumes and volumes[2] else today,
            executed_volume=_decimal(volumes[3]) if volumes else ZERO,
            open_volume=_decimal(volumes[4]) if volumes else ZERO,
            books=held,
            scope=text,
            state=volumes[1] if volumes else checks.ACTIVE,
            totals=scope_totals,
            daily_pnl=row_daily.get((FIRM_SCOPE, scope.key), ZERO) if scope.kind == "symbol" else daily.get(text, ZERO),
        )
    return checks.ScopedSnapshot(views)


def snapshot(state: RiskState) -> checks.RiskSnapshot:
    """The firm's state the checks see, read under the lock (after `lock`, in the same transaction)."""
    positions = Position.objects.filter(scope=FIRM_SCOPE).values_list(*POSITION_COLUMNS)
    limits = firm_limits()
    return checks.RiskSnapshot(
        limits=checks.Limits(*(getattr(limits, name) for name in CHECKED_LIMITS)),
        kill_switch_active=state.kill_switch_enabled,
        trading_day=state.trading_day or utc_today(),
        executed_volume=state.executed_volume,
        open_volume=state.open_volume,
        books=tuple(checks.SymbolBook(*row) for row in positions),
        state=state.trading_state,
    )


@dataclass(frozen=True)
class Reservation:
    """What an approved order holds against the limits until it ends, in each of its scopes: its quantity,
    its exposure (position rows' open notional: quantity x one unit's exposure at decision) and its notional
    (the scopes' open volume: quantity x one unit's notional), both in the reporting currency."""

    symbol: str
    side: checks.Side
    quantity: Decimal
    price: Decimal
    scopes: OrderScopes
    exposure_price: Decimal | None = None
    notional_price: Decimal | None = None

    @classmethod
    def of(cls, order: OrderTerms, quantity: Decimal | None = None) -> Reservation:
        """What an order (its symbol, side, prices, book and user) holds reserved: its open (leaves) quantity,
        or `quantity` of it (a fill's part)."""
        ref = directory.by_id(order.book_id)
        scopes = OrderScopes.of(desk=ref.desk, book=ref.code, trader=order.user.username, symbol=order.symbol)
        return cls(
            order.symbol,
            checks.Side(order.side),
            order.leaves_quantity if quantity is None else quantity,
            order.price,
            scopes,
            order.exposure_price,
            order.notional_price,
        )

    @classmethod
    def of_intent(cls, intent: checks.OrderIntent, scopes: OrderScopes) -> Reservation:
        return cls(
            intent.symbol,
            intent.side,
            intent.quantity,
            intent.price,
            scopes,
            intent.exposure_price,
            intent.notional_price,
        )

    @property
    def notional(self) -> Decimal:
        """Volume: quantity x one unit's notional."""
        return self.quantity * (self.price if self.notional_price is None else self.notional_price)

    @property
    def exposure(self) -> Decimal:
        return self.quantity * (self.price if self.exposure_price is None else self.exposure_price)


class _Named(Protocol):
    username: str


class OrderTerms(Protocol):
    symbol: str
    side: str
    quantity: Decimal
    leaves_quantity: Decimal
    price: Decimal
    book_id: int
    exposure_price: Decimal | None
    notional_price: Decimal | None

    @property
    def user(self) -> _Named: ...


def reserve(*, state: RiskState, reservations: Sequence[Reservation]) -> None:
    """Reserve approved orders (a batch of submissions): per (scope, symbol), the open buy and sell quantity
    and notional grow by the sum of its orders; each scope's open volume by its orders' notional. Caller
    holds the risk lock. PostgreSQL: one statement."""
    if statements := reserve_statements(state=state, reservations=reservations):
        run(statements)


def reserve_statements(*, state: RiskState, reservations: Sequence[Reservation]) -> list[Statement]:
    """`reserve`'s writes as statements, for a caller that runs them in a round trip it makes anyway (the
    submission batch's inserts: core.sql.bulk_insert's `before`); none for no reservation."""
    sums: dict[tuple[str, str], list[Decimal]] = {}
    volumes: dict[str, Decimal] = {}
    for r in reservations:
        offset = 0 if r.side == checks.Side.BUY else 2
        notional, exposure = r.notional, r.exposure
        for scope in r.scopes.positions:
            row = sums.setdefault((scope, r.symbol), [ZERO, ZERO, ZERO, ZERO])
            row[offset] += r.quantity
            row[offset + 1] += exposure
        for scope in r.scopes.volumes:
            volumes[scope] = volumes.get(scope, ZERO) + notional
    if not sums:
        return []
    total = sum((r.notional for r in reservations), ZERO)
    if connection.vendor == "postgresql":
        return [_reserve_in_one_statement(state, sums, volumes, total)]
    # SQLite: the same upserts as three statements (it has no UNNEST and no writes inside WITH).
    now = timezone.now()
    position, scope_state, risk_state = Position._meta.db_table, ScopeState._meta.db_table, RiskState._meta.db_table
    rows = [[scope, symbol, *values, now] for (scope, symbol), values in sums.items()]
    return [
        Statement(
            f'INSERT INTO "{position}" ("scope", "symbol", "quantity", "average_price", "realized_pnl", '  # noqa: S608
            '"open_buy_quantity", "open_buy_notional", "open_sell_quantity", "open_sell_notional", "updated_at") '
            "VALUES " + ", ".join(["(%s, %s, 0, 0, 0, %s, %s, %s, %s, %s)"] * len(rows)) + " "
            'ON CONFLICT ("scope", "symbol") DO UPDATE SET '
            '"open_buy_quantity" = "open_buy_quantity" + excluded."open_buy_quantity", '
            '"open_buy_notional" = "open_buy_notional" + excluded."open_buy_notional", '
            '"open_sell_quantity" = "open_sell_quantity" + excluded."open_sell_quantity", '
            '"open_sell_notional" = "open_sell_notional" + excluded."open_sell_notional", '
            '"updated_at" = excluded."updated_at"',
            [value for row in rows for value in row],
        ),
        Statement(
            f'INSERT INTO "{scope_state}" ("scope", "trading_state", "reason", "executed_volume", "open_volume", '  # noqa: S608
            '"updated_at") VALUES ' + ", ".join(["(%s, 'ACTIVE', '', 0, %s, %s)"] * len(volumes)) + " "
            'ON CONFLICT ("scope") DO UPDATE SET "open_volume" = "open_volume" + excluded."open_volume", '
            '"updated_at" = excluded."updated_at"',
            [value for scope, notional in volumes.items() for value in (scope, notional, now)],
        ),
        Statement(
            f'UPDATE "{risk_state}" SET "open_volume" = "open_volume" + %s WHERE "id" = %s',  # noqa: S608
            [total, state.pk],
        ),
    ]


def _reserve_in_one_statement(
    state: RiskState, sums: dict[tuple[str, str], list[Decimal]], volumes: dict[str, Decimal], total: Decimal
) -> Statement:
    """PostgreSQL: every (scope, symbol) row's open columns (created if new), every scope's open volume and
    the firm's, in one statement while the lock is held."""
    # Identifiers only from the models; every value is a parameter.
    position, scope_state, risk_state = Position._meta.db_table, ScopeState._meta.db_table, RiskState._meta.db_table
    keys = list(sums)
    columns = [[k[0] for k in keys], [k[1] for k in keys], *([sums[k][i] for k in keys] for i in range(4))]
    sql = (
        "WITH v (scope, symbol, bq, bn, sq, sn) AS ("  # noqa: S608
        "SELECT * FROM UNNEST(%s::varchar[], %s::varchar[], %s::numeric[], %s::numeric[], %s::numeric[], "
        "%s::numeric[])), "
        f'p AS (INSERT INTO "{position}" AS t ("scope", "symbol", "quantity", "average_price", "realized_pnl", '
        '"open_buy_quantity", "open_buy_notional", "open_sell_quantity", "open_sell_notional", "updated_at") '
        "SELECT scope, symbol, 0, 0, 0, bq, bn, sq, sn, now() FROM v "
        'ON CONFLICT ("scope", "symbol") DO UPDATE SET '
        '"open_buy_quantity" = t."open_buy_quantity" + EXCLUDED."open_buy_quantity", '
        '"open_buy_notional" = t."open_buy_notional" + EXCLUDED."open_buy_notional", '
        '"open_sell_quantity" = t."open_sell_quantity" + EXCLUDED."open_sell_quantity", '
        '"open_sell_notional" = t."open_sell_notional" + EXCLUDED."open_sell_notional", "updated_at" = now() '
        "RETURNING 1), "
        f'w AS (INSERT INTO "{scope_state}" AS s ("scope", "trading_state", "reason", "executed_volume", '
        '"open_volume", "updated_at") '
        "SELECT scope, 'ACTIVE', '', 0, volume, now() FROM UNNEST(%s::varchar[], %s::numeric[]) AS u (scope, volume) "
        'ON CONFLICT ("scope") DO UPDATE SET "open_volume" = s."open_volume" + EXCLUDED."open_volume", '
        '"updated_at" = now() RETURNING 1) '
        f'UPDATE "{risk_state}" SET "open_volume" = "open_volume" + %s WHERE "id" = %s'
    )
    return Statement(sql, [*columns, list(volumes), list(volumes.values()), total, state.pk])


def release(*, state: RiskState, reservation: Reservation) -> None:
    """Give back what `reserve` took for one order (it was filled, failed or cancelled), in every scope.
    Caller holds the risk lock."""
    notional, exposure = reservation.notional, reservation.exposure
    if reservation.side == checks.Side.BUY:
        qty_field, notional_field = "open_buy_quantity", "open_buy_notional"
    else:
        qty_field, notional_field = "open_sell_quantity", "open_sell_notional"
    Position.objects.filter(symbol=reservation.symbol, scope__in=reservation.scopes.positions).update(
        **{qty_field: F(qty_field) - reservation.quantity, notional_field: F(notional_field) - exposure}
    )
    ScopeState.objects.filter(scope__in=reservation.scopes.volumes).update(open_volume=F("open_volume") - notional)
    RiskState.objects.filter(pk=state.pk).update(open_volume=F("open_volume") - notional)


def price_factor(symbol: str) -> Decimal:
    """Money per unit of the instrument's price (multiplier x FX rate, from its latest Mark); 1 without one."""
    return price_factors([symbol])[symbol]


def price_factors(symbols: Collection[str]) -> dict[str, Decimal]:
    """price_factor of each symbol, in one query (an execution group's fills, under the risk lock)."""
    return price_factors_of(symbols, run([price_factors_statement(symbols)])[0] or [])


def price_factors_statement(symbols: Collection[str]) -> Statement:
    """The read price_factors makes, to run in a caller's round trip; its rows go to price_factors_of."""
    symbol_of, params = one_of('"symbol"', sorted(symbols))
    return Statement(f'SELECT "symbol", "factor" FROM "{Mark._meta.db_table}" WHERE {symbol_of}', params)  # noqa: S608


def price_factors_among_statement(symbols: Statement) -> Statement:
    """price_factors_statement for the symbols a subquery names (`symbols`: a SELECT of one column), for a
    read that runs in the same round trip as the one that finds them."""
    sql = f'SELECT "symbol", "factor" FROM "{Mark._meta.db_table}" WHERE "symbol" IN ({symbols.sql})'  # noqa: S608
    return Statement(sql, symbols.params)


def price_factors_of(symbols: Collection[str], rows: Sequence[Sequence[Any]]) -> dict[str, Decimal]:
    found = {symbol: factor for symbol, factor in rows}
    return {symbol: _plain(found.get(symbol)) or Decimal(1) for symbol in symbols}


@dataclass(frozen=True)
class FillBooking:
    """One fill to book: the reservation of the filled part (quantity and the order's prices and scopes), what
    was filled at what price, and the instrument's price factor (multiplier x FX, price_factor)."""

    reservation: Reservation
    quantity: Decimal
    price: Decimal
    factor: Decimal = Decimal(1)


def fill_book(
    *,
    state: RiskState,
    reservation: Reservation,
    fill_quantity: Decimal,
    fill_price: Decimal,
    now: dt.datetime,
    factor: Decimal = Decimal(1),
) -> Position:
    """Book one fill (fills_book); answers the firm's position in its symbol. Caller holds the risk lock."""
    booked = fills_book(state=state, fills=[FillBooking(reservation, fill_quantity, fill_price, factor)], now=now)
    return booked[(FIRM_SCOPE, reservation.symbol)]


@dataclass(frozen=True)
class BookedFills:
    """Fills booked (fills_booking) but, on PostgreSQL, not yet written: `changes` are the writes and `events`
    the DAILY_VOLUME_RESET of a new UTC day's first fill, for the caller's next round trip, in which its own
    writes and events go too (the events first: the day ended before its first fill)."""

    positions: dict[tuple[str, str], Position]
    changes: list[Statement]
    events: list[EventGroup]


def fills_book(*, state: RiskState, fills: Sequence[FillBooking], now: dt.datetime) -> dict[tuple[str, str], Position]:
    """Book fills and write them at once (fills_booking); answers the positions written, by (scope, symbol).
    Caller holds the risk lock."""
    booking = fills_booking(state=state, fills=fills, now=now)
    if booking.events:
        events_record_groups(booking.events, changes=booking.changes)
    elif booking.changes:
        run(booking.changes)
    return booking.positions


def fills_booking(*, state: RiskState, fills: Sequence[FillBooking], now: dt.datetime) -> BookedFills:
    """Book fills, in order, in every scope of their orders: release each one's reservation; position, average
    price, realised P&L, mark; the day's volume. Caller holds the risk lock, and `state` was read under it.

    Daily volume counts the filled quantity at the order's limit price, the same notional that was
    reserved and checked, so slippage can never push the day over its limit after approval.

    Each (scope, symbol) row is read once (locked) and written once whatever the number of fills (a group's
    fills of one symbol follow each other on the row in memory, as one by one), and the scopes' volumes
    summed: one round trip of reads, and on PostgreSQL the writes left to the caller's round trip
    (BookedFills), for a whole group of executions; elsewhere written here."""
    today = utc_today(now)
    symbols = sorted({f.reservation.symbol for f in fills})
    scopes = sorted({scope for f in fills for scope in f.reservation.scopes.positions})
    rows = {(p.scope, p.symbol): p for p in _positions_locked(symbols, scopes)}
    written: dict[tuple[str, str], Position] = {}
    executed_by_scope: dict[str, Decimal] = {}
    released_by_scope: dict[str, Decimal] = {}
    executed_total = released_total = ZERO
    for fill in fills:
        reservation = fill.reservation
        buy = reservation.side == checks.Side.BUY
        for scope in reservation.scopes.positions:
            key = (scope, reservation.symbol)
            position = rows.get(key) or Position(scope=scope, symbol=reservation.symbol)
            if buy:  # the reservation released
                position.open_buy_quantity -= reservation.quantity
                position.open_buy_notional -= reservation.exposure
            else:
                position.open_sell_quantity -= reservation.quantity
                position.open_sell_notional -= reservation.exposure
            if position.pnl_day != today:  # the row's first fill of the UTC day: the day starts from what it holds
                position.pnl_day, position.day_realized_pnl = today, ZERO
                position.sod_quantity, position.sod_average_price = position.quantity, position.average_price
            new = apply_fill(
                PositionState(position.quantity, position.average_price, ZERO),
                side=reservation.side,
                quantity=fill.quantity,
                price=fill.price,
            )
            # Realised P&L in the reporting currency: price differences times the factor.
            realized = (new.realized_pnl * fill.factor).quantize(PLACES, ROUND_HALF_EVEN)
            position.quantity, position.average_price = new.quantity, new.average_price
            position.realized_pnl += realized
            position.day_realized_pnl += realized
            position.mark_price, position.updated_at = fill.price, now
            rows[key] = written[key] = position
        executed = fill.quantity * (
            reservation.price if reservation.notional_price is None else reservation.notional_price
        )
        executed_total += executed
        released_total += reservation.notional
        for scope in reservation.scopes.volumes:
            executed_by_scope[scope] = executed_by_scope.get(scope, ZERO) + executed
            released_by_scope[scope] = released_by_scope.get(scope, ZERO) + reservation.notional
    Position.objects.bulk_create([p for p in written.values() if p.pk is None])
    if connection.vendor != "postgresql":
        volumes = [
            _scope_volume_statement(scope, today, executed_by_scope[scope], released_by_scope[scope], now)
            for scope in executed_by_scope
        ]
        run(
            [
                *(_position_statement(p, now) for p in written.values()),
                *volumes,
                Statement(
                    f'UPDATE "{RiskState._meta.db_table}" SET "open_volume" = "open_volume" - %s WHERE "id" = %s',  # noqa: S608
                    [released_total, state.pk],
                ),
            ]
        )
        _volume_add(state=state, notional=executed_total, now=now)
        return BookedFills(written, [], [])
    # PostgreSQL: statements whose text is fixed (prepared), run in the caller's round trip: every position row
    # in one UPDATE (a statement per row was four per fill, the most frequent statement of the whole order
    # flow), every scope's volumes in one upsert, and the firm's open volume released and executed volume added
    # in one UPDATE (a refresh and a save through the ORM were two more round trips per group). Whether a new UTC
    # day starts is read off `state`, read under the risk lock that every writer of the firm's row takes; `state`
    # then holds the day and executed volume the row will (not its open volume: reservations change the row's
    # by statements, not this object's).
    events = []
    if state.trading_day is not None and state.trading_day != today:
        events.append(_daily_volume_reset_group(state.trading_day, state.executed_volume, today))
    executed_before = state.executed_volume if state.trading_day == today else ZERO
    state.trading_day, state.executed_volume = today, executed_before + executed_total
    firm = _firm_volumes(state, today=today, released=released_total, executed=executed_total, now=now)
    positions = [_positions_statement_of(list(written.values()), now)] if written else []
    volumes = [_scope_volumes_statement(executed_by_scope, released_by_scope, today, now)] if executed_by_scope else []
    return BookedFills(written, [*positions, *volumes, firm], events)


_POSITION_COLUMNS = (
    "quantity",
    "average_price",
    "realized_pnl",
    "mark_price",
    "open_buy_quantity",
    "open_buy_notional",
    "open_sell_quantity",
    "open_sell_notional",
    "pnl_day",
    "day_realized_pnl",
    "sod_quantity",
    "sod_average_price",
)


def _position_statement(p: Position, now: dt.datetime) -> Statement:
    assignments = ", ".join(f'"{name}" = %s' for name in _POSITION_COLUMNS)
    return Statement(
        f'UPDATE "{Position._meta.db_table}" SET {assignments}, "updated_at" = %s WHERE "id" = %s',  # noqa: S608
        [*(getattr(p, name) for name in _POSITION_COLUMNS), now, p.pk],
    )


def _positions_statement_of(rows: Sequence[Position], now: dt.datetime) -> Statement:
    """PostgreSQL: every written position row in one UPDATE, a column's values in one array."""
    types = {"pnl_day": "date"}
    arrays = ", ".join(f"%s::{types.get(name, 'numeric')}[]" for name in _POSITION_COLUMNS)
    assignments = ", ".join(f'"{name}" = v."{name}"' for name in _POSITION_COLUMNS)
    names = ", ".join(f'"{name}"' for name in _POSITION_COLUMNS)
    return Statement(
        f'UPDATE "{Position._meta.db_table}" AS t SET {assignments}, "updated_at" = %s '  # noqa: S608 - model names
        f'FROM UNNEST(%s::bigint[], {arrays}) AS v ("id", {names}) WHERE t."id" = v."id"',
        [now, [p.pk for p in rows], *([getattr(p, name) for p in rows] for name in _POSITION_COLUMNS)],
    )


def _scope_volume_statement(
    scope: str, today: dt.date, executed: Decimal, released: Decimal, now: dt.datetime
) -> Statement:
    """A scope's executed volume of the UTC day grows (its first fill of a new day starts it at zero) and its
    open volume gives the reservations back."""
    table = ScopeState._meta.db_table
    return Statement(
        f'INSERT INTO "{table}" ("scope", "trading_state", "reason", "trading_day", '  # noqa: S608
        '"executed_volume", "open_volume", "updated_at") VALUES (%s, \'ACTIVE\', \'\', %s, %s, 0, %s) '
        f'ON CONFLICT ("scope") DO UPDATE SET "executed_volume" = CASE WHEN "{table}"."trading_day" = '
        f'excluded."trading_day" THEN "{table}"."executed_volume" + excluded."executed_volume" '
        'ELSE excluded."executed_volume" END, "trading_day" = excluded."trading_day", '
        f'"open_volume" = "{table}"."open_volume" - %s, "updated_at" = excluded."updated_at"',
        [scope, today, executed, now, released],
    )


def _scope_volumes_statement(
    executed: dict[str, Decimal], released: dict[str, Decimal], today: dt.date, now: dt.datetime
) -> Statement:
    """PostgreSQL: _scope_volume_statement for every scope of a group's fills in one statement, its text fixed
    (a statement per scope was up to four per fill: desk, book, trader, symbol). Each scope's released volume is
    looked up in `v` by the conflicting row's scope: EXCLUDED holds only the columns of the row proposed."""
    table = ScopeState._meta.db_table
    scopes = list(executed)
    return Statement(
        "WITH v (scope, executed, released) AS "  # noqa: S608 - the model's table name
        "(SELECT * FROM UNNEST(%s::varchar[], %s::numeric[], %s::numeric[])) "
        f'INSERT INTO "{table}" AS s ("scope", "trading_state", "reason", "trading_day", "executed_volume", '
        "\"open_volume\", \"updated_at\") SELECT scope, 'ACTIVE', '', %s::date, executed, 0, %s FROM v "
        'ON CONFLICT ("scope") DO UPDATE SET "executed_volume" = CASE WHEN s."trading_day" = EXCLUDED."trading_day" '
        'THEN s."executed_volume" + EXCLUDED."executed_volume" ELSE EXCLUDED."executed_volume" END, '
        '"trading_day" = EXCLUDED."trading_day", "open_volume" = s."open_volume" - '
        '(SELECT v.released FROM v WHERE v.scope = EXCLUDED."scope"), "updated_at" = EXCLUDED."updated_at"',
        [scopes, [executed[scope] for scope in scopes], [released[scope] for scope in scopes], today, now],
    )


def _firm_volumes(
    state: RiskState, *, today: dt.date, released: Decimal, executed: Decimal, now: dt.datetime
) -> Statement:
    """PostgreSQL: the firm's open volume released and the UTC day's executed volume added (the first fill of
    a new day starts it at the fills' notional)."""
    table = RiskState._meta.db_table
    return Statement(
        f'UPDATE "{table}" SET "open_volume" = "open_volume" - %s, "executed_volume" = '  # noqa: S608 - model's name
        'CASE WHEN "trading_day" = %s::date THEN "executed_volume" + %s ELSE %s END, "trading_day" = %s, '
        '"updated_at" = %s WHERE "id" = %s',
        [released, today, executed, executed, today, now, state.pk],
    )


def _daily_volume_reset(previous_day: dt.date, previous: Decimal, today: dt.date) -> None:
    """The firm's day volume started again: the event says the day that ended and its volume."""
    events_record_groups([_daily_volume_reset_group(previous_day, previous, today)])


def _daily_volume_reset_group(previous_day: dt.date, previous: Decimal, today: dt.date) -> EventGroup:
    payload = {"previous_day": previous_day.isoformat(), "previous_volume": previous, "day": today.isoformat()}
    return EventGroup([EventSpec(EventType.DAILY_VOLUME_RESET, payload)])


def _volume_add(*, state: RiskState, notional: Decimal, now: dt.datetime) -> None:
    """Add executed notional to the UTC day's volume; the first fill of a new UTC day starts it at zero."""
    today = utc_today(now)
    state.refresh_from_db(fields=["trading_day", "executed_volume"])
    if state.trading_day != today:
        previous_day, previous = state.trading_day, state.executed_volume
        state.trading_day, state.executed_volume = today, notional
        if previous_day is not None:
            _daily_volume_reset(previous_day, previous, today)
    else:
        state.executed_volume += notional
    state.save(update_fields=["trading_day", "executed_volume", "updated_at"])
