"""Order execution use-cases: start, attempt, complete or fail an order at the venue, and sweep stuck orders.

One attempt (order_execute, what the Celery task calls), for the asked order and a group of others:
  1. executions_start: lock the order row; nothing to do unless it is APPROVED (a redelivered or duplicated
     message is harmless). A SIM order takes with it up to EXECUTION_GROUP_MAX - 1 other orders waiting for
     their first venue call or due for a retry (locked with SKIP LOCKED, so two workers never share one); all
     APPROVED -> EXECUTING in one statement, their EXECUTION_STARTED events in one insert.
  2. For each, ask the shared circuit breaker for leave; call the venue with a timeout, the group's calls at
     the same time (one thread each). No lock is held meanwhile.
  3. The fills: executions_complete (one transaction, the RiskState lock taken once, per
     EXECUTION_BOOKING_MAX of the group's fills; per order: order lock, Fill row, EXECUTED,
     position/P&L/volume and the reservation released via risk.store.fill_book, EXECUTION_COMPLETED).
     The group's resting orders are recorded together, and so are its transient failures; a rejection,
     order by order.
     A transient failure (timeout, venue unavailable, breaker open): executions_attempt_failed, the
     group's failures in one transaction; with attempts left the orders go back to APPROVED and one
     message per attempt number is queued after its backoff (1 s, 2 s, 4 s); the last attempt ends the
     order FAILED. A venue rejection is final at once.

Decided here: an order meeting an open (or half-open and busy) breaker counts that as a failed attempt
("Circuit breaker open") and is retried within its attempts; once they are spent it ends FAILED with that
reason and its reservation is released. Between attempts the order is APPROVED, so the kill switch
cancels it like any order that has not started executing.

The sweeper (orders_sweep) re-queues orders left APPROVED or EXECUTING past ORDER_STUCK_AFTER_SECONDS (not
those resting at the venue, whose re-check passes it re-arms instead).
An EXECUTING one is resumed, not restarted: the venue answers a known order id with the execution it
already made, so an order whose worker died after the venue filled it is booked once (Fill is unique per
order as the last line).

Lock order, as everywhere: RiskState row, then the order row, then Position rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import uuid
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from audit.models import Event, EventType
from audit.services import EventGroup, EventSpec, event_record, events_record_groups
from core import context
from core.sql import BulkInsert, Rows, Statement, column, one_of, rows_of, run, update_rows
from orders import breaker
from orders.models import (
    CANCELLABLE_STATUSES,
    OPEN_STATUSES,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    TimeInForce,
    VenueCode,
)
from orders.venue import Execution, VenueError, VenueNotMarketable, VenueOrder, venue
from risk import store
from risk.models import RiskState

logger = logging.getLogger("itirp.execution")

BREAKER_OPEN_REASON = "Circuit breaker open"
ZERO = Decimal(0)
# Resting orders one re-check message takes at most (those the market cannot fill cost no venue call).
RECHECK_BATCH = 256
# Resting orders a re-check pass reads (with the claim, _recheck_pass); beyond it, the checks are recorded on
# the orders so that the next pass reads the others.
RECHECK_READ = 5000
# A re-check pass holds the claim for this share of VENUE_RECHECK_SECONDS: the messages queued for the same
# orders within it (by the groups they rested with, by the sweeper) are dropped; its own next pass, queued a
# whole interval later, finds the claim lapsed.
RECHECK_CLAIM_SHARE = 0.8
# Sent, re-queued and swept: orders waiting for a venue call (not those resting in the internal book).
SWEPT_STATUSES = (OrderStatus.APPROVED, OrderStatus.EXECUTING)


def venue_cancel(order: Order) -> bool:
    """Take an order off the venue that holds it, before its reservation is released: the internal venue's
    book is the order's own row (the caller's update removes it); the external venue is asked, and answers
    False when it has already filled the order (too late: its execution will be booked)."""
    if order.venue == VenueCode.INTERNAL:
        return True
    cancel = getattr(venue(), "cancel", None)  # an adapter that holds nothing between calls may have none
    return True if cancel is None else bool(cancel(str(order.pk)))


@dataclass(frozen=True)
class Outcome:
    """What one call of order_execute did: EXECUTED, RETRY (after retry_in seconds), FAILED or SKIPPED."""

    status: str
    reason: str = ""
    retry_in: float | None = None
    attempt: int = 0


def _log(level: int, message: str, order: Order, **fields: Any) -> None:
    logger.log(
        level,
        message,
        extra={
            "component": "execution",
            "event": message,
            "order_id": str(order.pk),
            "correlation_id": str(order.correlation_id),
            "user_id": order.user_id,
            **fields,
        },
    )


def _locked_order(order_id: Any) -> Order | None:
    # The user comes with the order (its reservation is kept per trader too); only the order row is locked.
    found = _orders_locked(f"o.{_qn('id')} = %s", [_order_pk(order_id)])
    return found[0] if found else None


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _order_pk(order_id: Any) -> Any:
    pk = Order._meta.pk
    assert pk is not None
    return pk.get_db_prep_value(uuid.UUID(str(order_id)), connection)


def _orders_locked(condition: str, params: list[Any], *, tail: str = "", skip_locked: bool = False) -> list[Order]:
    """Orders matching `condition` (SQL on the order row, alias o), rows locked FOR UPDATE (only theirs, not
    their users'), each with its user's username (what its reservation's trader scope needs).

    The worker runs these look-ups for every message and group: its SQL text is fixed per call site (prepared
    on PostgreSQL, core.sql.run), the columns are named in the model's order and each row becomes an order as
    the ORM makes one (Model.from_db after each backend's and field's converters, SQLite's included), without a
    queryset: compiling the select_related / select_for_update queryset each time was a tenth of the worker's
    CPU, and Django's raw queryset still worked out its columns and the model's init order on every call."""
    return _orders_of(run([_orders_locked_statement(condition, params, tail=tail, skip_locked=skip_locked)])[0])


def _orders_locked_statement(
    condition: str, params: list[Any], *, tail: str = "", skip_locked: bool = False
) -> Statement:
    """_orders_locked's SELECT, to run in a caller's round trip; its rows go to _orders_of."""
    head = _order_rows()[0]
    lock = ""
    if connection.features.has_select_for_update:
        lock = " FOR UPDATE OF o" + (" SKIP LOCKED" if skip_locked else "")
    return Statement(f"{head} WHERE {condition}{tail}{lock}", params)


def _orders_of(rows: Sequence[Sequence[Any]] | None) -> list[Order]:
    """The orders of _orders_locked_statement's rows, each with its user (id and username) cached."""
    _, order_rows, user_model = _order_rows()
    rows = rows or []
    user_field = Order._meta.get_field("user")
    orders = order_rows.instances(rows)
    for order, row in zip(orders, rows, strict=True):
        user_field.set_cached_value(
            order, user_model.from_db(connection.alias, ["id", "username"], [order.user_id, row[-1]])
        )
    return orders


def _order_rows() -> tuple[str, Rows, Any]:
    """_orders_locked's SELECT ... FROM ... JOIN (every concrete column of Order in the model's order, then the
    username), the rows' conversion and the user model."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    order_rows = rows_of(Order, "o")
    head = (
        f"SELECT {order_rows.columns}, u.{_qn('username')} FROM {_qn(Order._meta.db_table)} o "  # noqa: S608 - names
        f"JOIN {_qn(user_model._meta.db_table)} u ON u.{_qn('id')} = o.{_qn('user_id')}"
    )
    return head, order_rows, user_model


def _venue_name() -> str:
    return getattr(venue(), "name", settings.VENUE_NAME)


def backoff_seconds(attempt: int) -> float:
    """The wait after failed attempt `attempt` (1-based): EXECUTION_RETRY_BACKOFF_SECONDS, last one repeated."""
    delays = settings.EXECUTION_RETRY_BACKOFF_SECONDS or [1.0]
    return float(delays[min(attempt, len(delays)) - 1])


def execution_start(*, order_id: Any, resume: bool = False) -> Order | None:
    """APPROVED -> EXECUTING with EXECUTION_STARTED; None when there is nothing to execute.

    `resume` (the sweeper's re-queue of an order left EXECUTING by a dead worker) also takes an order that
    is already EXECUTING: the venue call is repeated and answered idempotently by the venue.
    """
    group = executions_start(order_id=order_id, resume=resume)
    return group[0] if group else None


def executions_start(
    *,
    order_id: Any,
    resume: bool = False,
    group_max: int = 1,
    with_ids: Sequence[Any] = (),
    wake: bool = False,
    attempt: int | None = None,
    recheck: bool = False,
) -> list[Order]:
    """execution_start for an order and, when it is a fresh SIM order and group_max > 1, up to group_max - 1
    other orders waiting for a venue call (APPROVED, at SIM, never started or due for a retry): first those
    named by `with_ids` (the rest of its submission batch, or of its group's retries), then the oldest others
    (rows another transaction holds are skipped); all APPROVED -> EXECUTING in one statement, their
    EXECUTION_STARTED events in one insert. The asked order first; [] when it has nothing to execute.

    An order whose retry's backoff is still running, or resting at the venue until its next check, keeps its
    own schedule (_waiting_first_call); the message of an order that joined someone else's group finds it no
    longer APPROVED, or past the attempt it was for, and is skipped.

    `wake` (a wake-up message, wake_claim): when the asked order has nothing to execute (it went with another
    group), the group is the oldest orders waiting for a call instead, the first of them asked.

    `attempt` (enqueue): the asked order is skipped when that attempt has already run.

    `recheck` (the re-check of orders resting at the venue, queued VENUE_RECHECK_SECONDS after they rested,
    the asked one and `with_ids`): with Redis, the message that holds the interval's claim re-checks every
    resting order due, and the others are dropped (_recheck_pass). Without it, an order checked since (by
    another re-check message, which takes every resting order due, _rechecked) or amended (the amend queues a
    check of its own) is skipped; the others named are still taken when the asked one is. Only those the
    market may fill are sent to the venue."""
    if recheck and not resume:
        claimed = _recheck_claim()
        if claimed is not None:
            return _recheck_pass(group_max=group_max) if claimed else []
    stale_before = _recheck_stale_before() if recheck else None

    def others_waiting() -> list[Order]:
        if wake:
            return _waiting_started(exclude=order_id, group_max=group_max)
        if recheck and with_ids:
            return _waiting_started(exclude=order_id, group_max=group_max, among=with_ids, recheck=True)
        if with_ids and attempt is not None and attempt > 1:
            # a group's retries, one message (_group_fails): the asked one went with another group, the
            # others named may not have
            return _waiting_started(exclude=order_id, group_max=group_max, among=with_ids)
        return []

    if not resume and _taken(order_id, stale_before, first_call=attempt == 1):
        return others_waiting()
    aside: list[Order] = []
    now_due: list[Order] = []
    with transaction.atomic():
        # A fresh SIM order's group is read in the round trip of its own locked read: the others its message
        # names, then the oldest others waiting, each statement after the one before in this transaction, as
        # when they were three round trips (_orders_locked). Should the asked order turn out not to be one to
        # group (taken by another group since _taken's read, resting, at another venue), the rows those reads
        # locked are let go by this transaction's commit, unused.
        ahead = group_max > 1 and not resume and not recheck
        reads = [_orders_locked_statement(f"o.{_qn('id')} = %s", [_order_pk(order_id)])]
        if ahead and with_ids:
            reads.append(_waiting_first_call_statement(exclude=order_id, limit=group_max - 1, among=with_ids))
        others_read = ahead and len(with_ids) < group_max - 1  # the batch's own orders leave room in the group
        if others_read:
            reads.append(_waiting_first_call_statement(exclude=order_id, limit=group_max - 1))
        rows = run(reads)
        asked = _orders_of(rows[0])
        order = asked[0] if asked else None
        if order is None:
            logger.warning("execution of unknown order %s skipped", order_id)
            return []
        if order.resting_seq is not None:
            # Resting in the internal book: it waits for a counterparty there, not for a venue call (a stale
            # or duplicated message must not take it out of the book).
            _log(logging.INFO, "execution_skipped", order, status=order.status, resting=True)
            return []
        fresh = order.status == OrderStatus.APPROVED
        if fresh and attempt is not None and order.retry_count + 1 != attempt:
            # the attempt this message was for ran with another order's group; the order's own next message
            # (queued with its backoff when that attempt failed) takes it from here
            _log(logging.INFO, "execution_skipped", order, status=order.status, stale_attempt=attempt)
            return others_waiting()
        if fresh and stale_before is not None and order.updated_at > stale_before:
            _log(logging.DEBUG, "execution_skipped", order, status=order.status, checked_since=True)
            return others_waiting()
        if not fresh and not (resume and order.status == OrderStatus.EXECUTING):
            _log(logging.INFO, "execution_skipped", order, status=order.status)
            return others_waiting()
        group, aside = [order], []
        grouped = fresh and group_max > 1 and order.venue == VenueCode.SIM
        if grouped and with_ids:
            group += (
                _orders_of(rows[1])
                if ahead
                else _waiting_first_call(exclude=order.pk, limit=group_max - 1, among=with_ids)
            )
        if recheck:
            group, aside, now_due = _rechecked(group, exclude=order.pk, group_max=group_max)
        if grouped and len(group) < group_max:
            taken = {member.pk for member in group}
            others = _orders_of(rows[-1]) if others_read else _waiting_first_call(exclude=order.pk, limit=group_max - 1)
            group += [other for other in others if other.pk not in taken][: group_max - len(group)]
        if group:
            _started(group, resume=resume)
    _recheck_later(aside)
    _recheck_later(now_due, countdown=0)
    for member in group:
        # DEBUG: the EXECUTION_STARTED event's own line (component audit) says it at INFO, with the group.
        _log(logging.DEBUG, "execution_started", member, attempt=member.retry_count + 1, group=len(group))
    return group


def _waiting_started(*, exclude: Any, group_max: int, among: Sequence[Any] = (), recheck: bool = False) -> list[Order]:
    """A wake-up's or a re-check's group when its asked order has nothing to execute: the oldest orders waiting
    for a venue call (rows another transaction holds skipped), or those of `among` still waiting (a re-check:
    those the market may fill, _set_aside_unfillable); started; [] when none waits."""
    aside: list[Order] = []
    with transaction.atomic():
        group = _waiting_first_call(exclude=exclude, limit=group_max, among=among)
        if recheck:
            # its own orders only: the asked one was checked since, by a message that took all those due
            group, aside = _set_aside_unfillable(group)
        if group:
            _started(group, resume=False)
    _recheck_later(aside)
    for member in group:
        _log(logging.DEBUG, "execution_started", member, attempt=member.retry_count + 1, group=len(group))
    return group


def _rechecked(group: list[Order], *, exclude: Any, group_max: int) -> tuple[list[Order], list[Order], list[Order]]:
    """A re-check message's orders (`group`, locked) with every other resting order whose re-check is due (up
    to RECHECK_BATCH, rows another transaction holds skipped), split three ways: the group to send to the venue
    (those the market may fill, up to group_max), those set aside (_set_aside_unfillable), and those the
    market may fill beyond the group (due: re-checked by a message of their own at once).

    Taking the others due makes the re-checks of all resting orders one message per interval, whatever the
    groups they rested with: the messages they had already queued find them checked since and are skipped."""
    taken = {order.pk for order in group}
    group = group + [order for order in _rechecks_due(exclude=exclude, limit=RECHECK_BATCH) if order.pk not in taken]
    group, aside = _set_aside_unfillable(group)
    return group[:group_max], aside, group[group_max:]


def _rechecks_due(*, exclude: Any, limit: int) -> list[Order]:
    """Up to `limit` orders resting at the simulated venue whose re-check is due by a re-check message's measure
    (_recheck_stale_before), locked (rows another transaction holds skipped), oldest check first."""
    condition = f"{_resting_due()} AND o.{_qn('id')} <> %s"
    params = [*_resting_due_params(_recheck_stale_before()), _order_pk(exclude), limit]
    return _orders_locked(condition, params, tail=f" ORDER BY o.{_qn('updated_at')} LIMIT %s", skip_locked=True)


def _resting_due() -> str:
    """SQL on the order row (alias o): resting at the simulated venue (APPROVED there, with ORDER_RESTING, not in
    the internal book) and its check due (updated_at at or before a time); its parameters: _resting_due_params."""
    events = _qn(Event._meta.db_table)
    return (
        f"o.{_qn('status')} = %s AND o.{_qn('venue')} = %s AND o.{_qn('resting_seq')} IS NULL AND "  # noqa: S608 - names
        f"o.{_qn('updated_at')} <= %s AND EXISTS (SELECT 1 FROM {events} e WHERE "
        f"e.{_qn('order_id')} = o.{_qn('id')} AND e.{_qn('event_type')} = '{EventType.ORDER_RESTING}')"
    )


def _resting_due_params(stale_before: dt.datetime) -> list[Any]:
    return [OrderStatus.APPROVED, VenueCode.SIM, connection.ops.adapt_datetimefield_value(stale_before)]


def _set_aside_unfillable(group: list[Order]) -> tuple[list[Order], list[Order]]:
    """A re-check's resting orders (locked) split into those to send to the venue and those set aside
    (_fillable_split), the latter's next check VENUE_RECHECK_SECONDS from now (updated_at, in the caller's
    transaction; _recheck_later queues the message): without the re-check claim (_recheck_claim), that record
    is what makes the other messages queued for them stale."""
    group, aside = _fillable_split(group)
    if aside:
        now = _checked(aside)
        debug = logger.isEnabledFor(logging.DEBUG)
        for order in aside:
            order.updated_at = now
            if debug:
                _log(logging.DEBUG, "order_resting", order, checked=True)
    return group, aside


class _RestingRow(NamedTuple):
    """An order resting at the venue as a re-check pass reads it (_recheck_pass): what the venue's `fillable`
    is asked about (_venue_order), when it was last changed or checked, and what its message needs."""

    pk: uuid.UUID
    correlation_id: uuid.UUID
    updated_at: dt.datetime
    symbol: str
    side: str
    leaves_quantity: Decimal
    price: Decimal | None
    protection_price: Decimal | None
    order_type: str


_Resting = TypeVar("_Resting", Order, _RestingRow)


def _fillable_split(orders: list[_Resting]) -> tuple[list[_Resting], list[_Resting]]:
    """Resting orders split into those to send to the venue and those set aside: the ones the market cannot
    fill yet, by the venue's `fillable` (the simulated venue answers from the latest prices, by the rule of its
    own calls; a venue without it has every order sent). Set aside: no venue call and no event (nothing about
    the order changed).

    Each re-check was a venue call, an EXECUTION_STARTED event and two transactions: a few hundred limit
    orders resting under a market that does not reach them were a hundred of each a second."""
    fillable = getattr(venue(), "fillable", None)
    if fillable is None or not orders:
        return orders, []
    may_fill = fillable([_venue_order(order) for order in orders])
    aside = [order for order in orders if str(order.pk) not in may_fill]
    if not aside:
        return orders, []
    return [order for order in orders if str(order.pk) in may_fill], aside


def _checked(orders: Sequence[Order | _RestingRow]) -> dt.datetime:
    """Resting orders just checked, and set aside: their updated_at now (the next check and the sweeper count
    from it), for those still APPROVED (the caller may hold no lock on them). That time."""
    meta = Order._meta
    now = timezone.now()
    named, params = one_of(f"{_qn('id')}", [_order_pk(order.pk) for order in orders])
    run(
        [
            Statement(
                f"UPDATE {_qn(meta.db_table)} SET {_qn('updated_at')} = %s WHERE {named} AND {_qn('status')} = %s",  # noqa: S608
                [meta.get_field("updated_at").get_db_prep_save(now, connection), *params, OrderStatus.APPROVED],
            )
        ]
    )
    return now


def _recheck_key() -> str:
    return f"{settings.EXECUTION_REDIS_PREFIX}:execution:recheck"


def _recheck_claim() -> bool | None:
    """Whether this re-check message runs the interval's re-check pass (_recheck_pass): True, the claim (a Redis
    key set if absent, lapsing after RECHECK_CLAIM_SHARE of VENUE_RECHECK_SECONDS) is its own; False, another
    message ran the pass since (it queued the next): this one is dropped. None without Redis, or when Redis does
    not answer: the message re-checks as the claim did not exist, recording each check on the orders
    set aside (_set_aside_unfillable), which is what makes later messages for them stale."""
    if not settings.REDIS_URL:
        return None
    lapse = max(1, int(settings.VENUE_RECHECK_SECONDS * RECHECK_CLAIM_SHARE * 1000))
    try:
        return bool(breaker.redis_client().set(_recheck_key(), b"1", nx=True, px=lapse))
    except Exception:  # noqa: BLE001 - Redis down: re-check, recording the checks on the orders
        logger.debug("re-check claim: Redis did not answer", exc_info=True)
        return None


def _recheck_pass(*, group_max: int) -> list[Order]:
    """The interval's re-check of the orders resting at the simulated venue (with the claim, _recheck_claim):
    they are read without a lock (up to RECHECK_READ, oldest first), and of those whose check is due (rested,
    or amended, at least half an interval ago) the ones the latest prices say the market may fill
    (_fillable_split) are locked (rows another transaction holds skipped) and started, up to group_max, the
    others of them queued at once (a message for each group_max); the ones the market cannot fill cost no lock,
    no write and no event. While any other order rests, the next pass is queued VENUE_RECHECK_SECONDS from now
    (the messages of the groups that rest meanwhile find the claim held and are dropped); should its message be
    lost, the sweeper queues one (orders_sweep). The started group; [] when none.

    Each pass locked and rewrote every resting order the market had not reached (its updated_at, in all the
    table's indexes): with 200 resting, executions ran a quarter slower than without any."""
    resting = [
        _RestingRow(*row)
        for row in Order.objects.filter(_resting_at_venue())
        .order_by("updated_at")
        .values_list(*_RestingRow._fields)[:RECHECK_READ]
    ]
    stale_before = _recheck_stale_before()
    due = [order for order in resting if order.updated_at <= stale_before]
    may_fill, aside = _fillable_split(due)
    group: list[Order] = []
    if may_fill:
        with transaction.atomic():
            named, named_params = one_of(f"o.{_qn('id')}", [_order_pk(order.pk) for order in may_fill])
            group = _orders_locked(
                f"{_resting_due()} AND {named}",
                [*_resting_due_params(stale_before), *named_params, group_max],
                tail=f" ORDER BY o.{_qn('updated_at')} LIMIT %s",
                skip_locked=True,
            )
            if group:
                _started(group, resume=False)
        taken = {order.pk for order in group}
        beyond = [order for order in may_fill if order.pk not in taken]
        for start in range(0, len(beyond), group_max):
            first, *others = beyond[start : start + group_max]
            # a plain message: a re-check would find the claim held
            enqueue(first.pk, first.correlation_id, countdown=0, with_ids=[other.pk for other in others])
    if aside and len(resting) >= RECHECK_READ:
        _checked(aside)  # more rest than a pass reads: the next reads those this one did not
    sent = {order.pk for order in may_fill}
    _recheck_later([order for order in resting if order.pk not in sent][:1])
    for member in group:
        _log(logging.DEBUG, "execution_started", member, attempt=member.retry_count + 1, group=len(group))
    return group


def _recheck_later(orders: Sequence[Order | _RestingRow], *, countdown: float | None = None) -> None:
    """One re-check message for resting orders (the first, the others named), after `countdown` seconds,
    VENUE_RECHECK_SECONDS unless given."""
    if orders:
        first, *others = orders
        enqueue(
            first.pk,
            first.correlation_id,
            countdown=settings.VENUE_RECHECK_SECONDS if countdown is None else countdown,
            with_ids=[other.pk for other in others],
            recheck=True,
        )


def _venue_order(order: Order | _RestingRow) -> VenueOrder:
    """What the venue is sent for an order: what is left of it, at its limit (a market order at its protection
    price)."""
    market_order = order.order_type == OrderType.MARKET
    return VenueOrder(
        order_id=str(order.pk),
        symbol=order.symbol,
        side=order.side,
        quantity=order.leaves_quantity,
        price=order.protection_price if market_order else order.price,
        order_type=order.order_type,
    )


def _started(group: Sequence[Order], *, resume: bool) -> None:
    """The group's orders EXECUTING, in the caller's transaction: one UPDATE, and their EXECUTION_STARTED
    events in one insert (the first order is the asked one; each other says whose group it joined)."""
    order = group[0]
    now = timezone.now()
    for member in group:
        if member.status == OrderStatus.APPROVED:
            member.transition(OrderStatus.EXECUTING)
        member.updated_at = now
    venue_name = _venue_name()
    _events_each(
        EventType.EXECUTION_STARTED,
        [
            (
                member,
                {
                    "attempt": member.retry_count + 1,
                    "venue": member.venue if member.venue == VenueCode.INTERNAL else venue_name,
                    "resumed": resume and member is order,
                    # executed with another order's group: taken by that order's task
                    **({} if member is order else {"group_of": str(order.pk)}),
                },
            )
            for member in group
        ],
        changes=[_orders_executing([member.pk for member in group], now)],
    )


def _events_each(
    event_type: EventType, payloads: Sequence[tuple[Order, dict[str, Any]]], *, changes: Sequence[Statement]
) -> None:
    """One event of `event_type` for each order, with its payload, each under its order's correlation id; all
    in one insert, `changes` (the orders' UPDATE) in its round trip."""
    events_record_groups(
        [
            EventGroup(
                [EventSpec(event_type, payload, order_id=order.pk, symbol=order.symbol)],
                correlation_id=order.correlation_id,
            )
            for order, payload in payloads
        ],
        changes=changes,
    )


def _orders_executing(order_ids: Sequence[Any], now: dt.datetime) -> Statement:
    """The group's orders EXECUTING, in the round trip of their EXECUTION_STARTED events (a text fixed on
    PostgreSQL, prepared; the ORM's UPDATE was compiled and sent on its own for every group)."""
    return _orders_status(order_ids, OrderStatus.EXECUTING, now)


def _orders_status(
    order_ids: Sequence[Any], status: str, now: dt.datetime, *, retry_count: int | None = None
) -> Statement:
    """The orders' status and updated_at (and their retry_count, given one: a failed attempt's number, whose
    backoff runs from updated_at, _waiting_first_call), in one UPDATE whose text is fixed per form."""
    meta = Order._meta
    pk = meta.pk
    assert pk is not None
    updated_at = meta.get_field("updated_at")
    named, params = one_of(_qn(column(pk)), [_order_pk(order_id) for order_id in order_ids])
    retries, retried = (f", {_qn('retry_count')} = %s", [retry_count]) if retry_count is not None else ("", [])
    return Statement(
        f"UPDATE {_qn(meta.db_table)} SET {_qn('status')} = %s, {_qn('updated_at')} = %s{retries} "  # noqa: S608
        f"WHERE {named}",
        [status, updated_at.get_db_prep_save(now, connection), *retried, *params],
    )


def _taken(order_id: Any, stale_before: dt.datetime | None = None, *, first_call: bool = False) -> bool:
    """Whether the order is already past APPROVED (executed with another order's group, or by an earlier
    message), or, for a message of its first call (`first_call`), has had that call and rests at the venue
    (its re-check message takes it from there), or, for a re-check (`stale_before`), was checked or amended
    after that time; read without a lock: its message is then skipped at the cost of one indexed read. An
    APPROVED (or unknown) order goes on to the locked read, which decides."""
    pk = Order._meta.pk
    assert pk is not None
    qn = connection.ops.quote_name
    events = qn(Event._meta.db_table)
    statement = Statement(
        f"SELECT o.{qn('status')}, o.{qn('user_id')}, o.{qn('correlation_id')}, o.{qn('updated_at')}, "  # noqa: S608
        f"EXISTS (SELECT 1 FROM {events} e WHERE e.{qn('order_id')} = o.{qn(column(pk))} AND "
        f"e.{qn('event_type')} = '{EventType.ORDER_RESTING}') FROM {qn(Order._meta.db_table)} o "
        f"WHERE o.{qn(column(pk))} = %s",
        [pk.get_db_prep_value(order_id, connection)],
    )
    found = run([statement])[0]
    if not found:
        return False
    status, user_id, correlation_id, updated_at, rested = found[0]
    if status == OrderStatus.APPROVED and not (first_call and rested):
        if stale_before is None:
            return False
        updated = Order._meta.get_field("updated_at").to_python(updated_at)
        if settings.USE_TZ and timezone.is_naive(updated):  # SQLite's text
            updated = timezone.make_aware(updated, dt.UTC)
        if updated <= stale_before:
            return False
    if not logger.isEnabledFor(logging.DEBUG):
        return True
    # DEBUG: routine with execution groups (the order went with another's; its EXECUTION_STARTED says whose)
    logger.debug(
        "execution_skipped",
        extra={
            "component": "execution",
            "event": "execution_skipped",
            "order_id": str(order_id),
            "correlation_id": str(uuid.UUID(str(correlation_id))),
            "user_id": user_id,
            "status": status,
        },
    )
    return True


def _recheck_stale_before(now: dt.datetime | None = None) -> dt.datetime:
    """A re-check message (queued VENUE_RECHECK_SECONDS after its orders rested) is stale for an order checked
    or amended after this: half the interval ago, so that a message taken a little early still counts."""
    return (now or timezone.now()) - timedelta(seconds=settings.VENUE_RECHECK_SECONDS / 2)


def _waiting_first_call(*, exclude: Any, limit: int, among: Sequence[Any] = ()) -> list[Order]:
    """Up to `limit` other orders waiting for a call to the simulated venue, locked, oldest first: those never
    started (no EXECUTION_STARTED in the trail) and those whose retry is due (a failed attempt whose backoff,
    backoff_seconds, has run out; never an order resting at the venue, which its group's re-check message
    takes). An order whose backoff is running is left to its retry's message. `among`: those of these orders
    named by the asked order's message (the rest of its submission batch, or of its re-check: resting orders
    whose re-check is due, _recheck_stale_before), their rows waited for; else any (rows locked by another
    transaction skipped).

    Retries join groups because each was a message and a venue call of its own: at the simulated venue's 10 %
    of failures, one in ten orders cost a worker process the venue's whole latency alone, which under load was
    what the worker could not keep up with."""
    return _orders_of(run([_waiting_first_call_statement(exclude=exclude, limit=limit, among=among)])[0])


def _waiting_first_call_statement(*, exclude: Any, limit: int, among: Sequence[Any] = ()) -> Statement:
    """_waiting_first_call's SELECT, to run in a caller's round trip; its rows go to _orders_of."""
    events = _qn(Event._meta.db_table)

    def exists(event_type: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM {events} e WHERE e.{_qn('order_id')} = o.{_qn('id')} AND "  # noqa: S608 - names
            f"e.{_qn('event_type')} = '{event_type}')"
        )

    now = timezone.now()
    rested = exists(EventType.ORDER_RESTING)
    waiting = f"(o.{_qn('retry_count')} = 0 AND NOT {exists(EventType.EXECUTION_STARTED)})"
    params: list[Any] = [OrderStatus.APPROVED, VenueCode.SIM, _order_pk(exclude)]
    if among:
        waiting += f" OR (o.{_qn('updated_at')} <= %s AND {rested})"
        params.append(connection.ops.adapt_datetimefield_value(_recheck_stale_before(now)))
    retries = range(1, settings.EXECUTION_MAX_ATTEMPTS)
    if retries:
        # due: failed attempt k's updated_at (set when it failed) at least backoff_seconds(k) ago
        cases = " ".join(f"WHEN {k} THEN %s" for k in retries)
        waiting += f" OR (o.{_qn('updated_at')} <= CASE o.{_qn('retry_count')} {cases} END AND NOT {rested})"
        params += [
            connection.ops.adapt_datetimefield_value(now - timedelta(seconds=backoff_seconds(k))) for k in retries
        ]
    condition = (
        f"o.{_qn('status')} = %s AND o.{_qn('venue')} = %s AND o.{_qn('resting_seq')} IS NULL AND "  # noqa: S608 - names
        f"o.{_qn('id')} <> %s AND ({waiting})"
    )
    if among:
        named, named_params = one_of(f"o.{_qn('id')}", [_order_pk(other) for other in among])
        return _orders_locked_statement(
            f"{condition} AND {named}", [*params, *named_params, limit], tail=f" ORDER BY o.{_qn('id')} LIMIT %s"
        )
    return _orders_locked_statement(
        condition, [*params, limit], tail=f" ORDER BY o.{_qn('updated_at')} LIMIT %s", skip_locked=True
    )


def execution_complete(*, order_id: Any, fill: Execution, attempt: int | None = None) -> Order | None:
    """Book the venue's execution of an order it was sent (fill_record: Fill, position and volume, the
    reservation of the filled part released, one event).

    Idempotent: a report already booked (the same venue execution id) is ignored and recorded."""
    return executions_complete([(order_id, fill, attempt)])[order_id]


def executions_complete(answers: Sequence[tuple[Any, Execution, int | None]]) -> dict[Any, Order | None]:
    """Book the venue's executions of orders it was sent, `(order_id, fill, attempt)` each, in one
    transaction under one hold of the risk lock (fills_record: the group's writes in a few round trips). Answers
    each order id with its order (booked, or a duplicate report ignored and recorded) or None (unknown, or
    no longer executing)."""
    booked: dict[Any, Order | None] = {}
    logged: list[tuple[Order, int, Execution]] = []
    with transaction.atomic():
        state, orders, seen, factors = _locked_for_fills(answers)
        reports: list[FillReport] = []
        now = timezone.now()
        for order_id, fill, attempt in answers:
            order = orders.get(uuid.UUID(str(order_id)))
            booked[order_id] = order
            if order is None:
                continue
            if fill.venue_execution_id in seen:
                _duplicate_report(order, fill)
                continue
            if order.status == OrderStatus.APPROVED:
                # Re-queued while this call was at the venue; the venue's answer stands.
                order.transition(OrderStatus.EXECUTING)
            if order.status != OrderStatus.EXECUTING:
                _log(
                    logging.ERROR,
                    "fill_for_closed_order",
                    order,
                    status=order.status,
                    venue_execution_id=fill.venue_execution_id,
                )
                booked[order_id] = None
                continue
            attempt = attempt or order.retry_count + 1
            order.retry_count = attempt - 1
            reports.append(
                FillReport(
                    order,
                    fill.quantity,
                    fill.price,
                    fill.venue,
                    fill.venue_execution_id,
                    factors[order.symbol],
                    attempt,
                )
            )
            seen.add(fill.venue_execution_id)
            logged.append((order, attempt, fill))
        if reports:
            fills_record(state=state, fills=reports, now=now)
    for order, attempt, fill in logged:
        _log(logging.DEBUG, "execution_completed", order, attempt=attempt, fill_price=str(fill.price))  # as above
    return booked


def _locked_for_fills(
    answers: Sequence[tuple[Any, Execution, int | None]],
) -> tuple[RiskState, dict[Any, Order], set[str], dict[str, Decimal]]:
    """What booking the answers needs, in one round trip on PostgreSQL, each text fixed (prepared): the risk
    lock; then, under it, the answers' orders locked in id order (as every writer locks them), which of the
    venue's execution ids are booked already, and the price factor of the orders' symbols
    (risk.store.price_factors)."""
    named, named_params = one_of(f"o.{_qn('id')}", [_order_pk(order_id) for order_id, _, _ in answers])
    ids, id_params = one_of(_qn("venue_execution_id"), [fill.venue_execution_id for _, fill, _ in answers])
    symbols_sql = f"SELECT o.{_qn('symbol')} FROM {_qn(Order._meta.db_table)} o WHERE {named}"  # noqa: S608
    seen_sql = f"SELECT {_qn('venue_execution_id')} FROM {_qn(Fill._meta.db_table)} WHERE {ids}"  # noqa: S608
    state, (order_rows, seen_rows, factor_rows) = store.lock_with(
        [
            _orders_locked_statement(named, named_params, tail=f" ORDER BY o.{_qn('id')}"),
            Statement(seen_sql, id_params),
            store.price_factors_among_statement(Statement(symbols_sql, named_params)),
        ]
    )
    orders = {order.pk: order for order in _orders_of(order_rows)}
    factors = store.price_factors_of({order.symbol for order in orders.values()}, factor_rows or [])
    return state, orders, {row[0] for row in seen_rows or ()}, factors


PRICE_PLACES = Decimal("0.00000001")


def fill_record(
    *,
    state: RiskState,
    order: Order,
    quantity: Decimal,
    price: Decimal,
    venue: str,
    venue_execution_id: str,
    now: dt.datetime,
    factor: Decimal,
    attempt: int | None = None,
) -> Fill:
    """Book one fill of an order (fills_record). Caller holds the risk lock and the order's row."""
    report = FillReport(order, quantity, price, venue, venue_execution_id, factor, attempt)
    return fills_record(state=state, fills=[report], now=now)[0]


@dataclass(frozen=True)
class FillReport:
    """One fill of an order as a venue reported it, with the instrument's price factor (multiplier x FX)."""

    order: Order
    quantity: Decimal
    price: Decimal
    venue: str
    venue_execution_id: str
    factor: Decimal
    attempt: int | None = None


_ORDER_FILLED_FIELDS = (
    "status",
    "executed_quantity",
    "executed_price",
    "leaves_quantity",
    "resting_seq",
    "retry_count",
    "updated_at",
)


def fills_record(*, state: RiskState, fills: Sequence[FillReport], now: dt.datetime) -> list[Fill]:
    """Book fills of orders (whole or in parts; an order may have several, in order): the Fill rows; each
    order's executed quantity, VWAP and leaves; EXECUTED when nothing is left, else PARTIALLY_FILLED; the
    position, P&L and volume of every scope with the reservation of the filled part released
    (risk.store.fills_book); per fill EXECUTION_COMPLETED (an order's last) or ORDER_PARTIALLY_FILLED.
    Caller holds the risk lock and the orders' rows, and saves nothing.

    On PostgreSQL, whatever the group's size, one round trip reads the position rows (locked) and one writes
    everything: the positions and volumes (fills_booking), the orders, the Fill rows and the events."""
    rows: list[Fill] = []
    bookings: list[store.FillBooking] = []
    groups: list[EventGroup] = []
    orders: dict[Any, Order] = {}
    for fill in fills:
        order, quantity, price = fill.order, fill.quantity, fill.price
        if quantity > order.leaves_quantity:
            raise ValueError(f"fill of {quantity} exceeds what order {order.pk} has open ({order.leaves_quantity})")
        rows.append(
            Fill(
                order=order,
                venue=fill.venue,
                venue_execution_id=fill.venue_execution_id,
                quantity=quantity,
                price=price,
                created_at=now,
            )
        )
        bookings.append(store.FillBooking(store.Reservation.of(order, quantity), quantity, price, fill.factor))
        before = order.executed_quantity or ZERO
        filled = before + quantity
        order.executed_price = (((order.executed_price or ZERO) * before + price * quantity) / filled).quantize(
            PRICE_PLACES, ROUND_HALF_EVEN
        )
        order.executed_quantity = filled
        order.leaves_quantity -= quantity
        done = order.leaves_quantity == 0
        if done:
            order.resting_seq = None
        order.transition(OrderStatus.EXECUTED if done else OrderStatus.PARTIALLY_FILLED)
        orders[order.pk] = order
        spec = EventSpec(
            EventType.EXECUTION_COMPLETED if done else EventType.ORDER_PARTIALLY_FILLED,
            {
                "fill_quantity": quantity,
                "fill_price": price,
                "order_price": order.price,
                "order_quantity": order.quantity,
                "side": order.side,
                "venue": fill.venue,
                "venue_execution_id": fill.venue_execution_id,
                "attempt": fill.attempt or order.retry_count + 1,
                "factor": fill.factor,  # multiplier x FX: the fill's realised P&L in the reporting currency
                "executed_quantity": filled,
                "executed_price": order.executed_price,
                "leaves_quantity": order.leaves_quantity,
            },
            order_id=order.pk,
            symbol=order.symbol,
        )
        groups.append(EventGroup([spec], correlation_id=order.correlation_id))
    booking = store.fills_booking(state=state, fills=bookings, now=now)
    events_record_groups(
        [*booking.events, *groups],
        with_rows=[BulkInsert(Fill, rows)],
        changes=[*booking.changes, *update_rows(Order, list(orders.values()), _ORDER_FILLED_FIELDS)],
    )
    return rows


def _duplicate_report(order: Order, fill: Execution) -> None:
    """A venue's report of a fill already booked (a redelivered message, a resumed call): ignored, recorded."""
    event_record(
        event_type=EventType.FILL_DUPLICATE_IGNORED,
        payload={
            "venue": fill.venue,
            "venue_execution_id": fill.venue_execution_id,
            "quantity": fill.quantity,
            "price": fill.price,
        },
        order_id=order.pk,
        symbol=order.symbol,
        correlation_id=order.correlation_id,
    )
    _log(logging.INFO, "fill_duplicate_ignored", order, venue_execution_id=fill.venue_execution_id)


def order_end(
    *, state: RiskState, order: Order, status: str, reason: str, event_type: EventType, payload: dict[str, Any]
) -> None:
    """End an open order without (more) fills: CANCELLED, EXPIRED or FAILED; what it still holds reserved is
    released; out of the internal venue's book. Caller holds the risk lock and the order's row."""
    order.transition(status)
    order.rejection_reason = reason[:500]
    store.release(state=state, reservation=store.Reservation.of(order))
    order.leaves_quantity, order.resting_seq = ZERO, None
    order.save(
        update_fields=["status", "rejection_reason", "leaves_quantity", "resting_seq", "retry_count", "updated_at"]
    )
    event_record(
        event_type=event_type,
        payload=payload,
        order_id=order.pk,
        symbol=order.symbol,
        correlation_id=order.correlation_id,
    )


def _fail(state: RiskState, order: Order, reason: str) -> None:
    order_end(
        state=state,
        order=order,
        status=OrderStatus.FAILED,
        reason=reason,
        event_type=EventType.EXECUTION_FAILED,
        payload={
            "reason": reason[:500],
            "attempts": order.retry_count,
            "side": order.side,
            "quantity": order.quantity,
            "price": order.price,
        },
    )
    _log(logging.WARNING, "execution_failed", order, reason=order.rejection_reason)


def execution_attempt_failed(
    *, order_id: Any, reason: str, attempt: int, retry: bool, retry_in: float | None = None
) -> Order | None:
    """Record a failed attempt (EXECUTION_ATTEMPT_FAILED, retry_count = attempt).

    retry: the order goes back to APPROVED to wait for its next attempt. Not retry: the order ends FAILED
    in the same transaction (reservation released, EXECUTION_FAILED). None if the order is not EXECUTING.
    """
    failed = executions_attempt_failed([AttemptFailed(order_id, reason, attempt, retry, retry_in)])
    return failed.get(str(order_id))


class AttemptFailed(NamedTuple):
    """One order's failed attempt, for executions_attempt_failed."""

    order_id: Any
    reason: str
    attempt: int
    retry: bool
    retry_in: float | None = None


def executions_attempt_failed(failures: Sequence[AttemptFailed]) -> dict[str, Order]:
    """execution_attempt_failed for a group's orders in one transaction: the risk lock only when one of them
    ends (no retry left), the orders' rows locked in one read, their EXECUTION_ATTEMPT_FAILED events in one
    insert with the UPDATE of those that wait for a retry (one per attempt number) in its round trip; those
    that end, FAILED one by one after it (rare: the last attempt). The orders that were EXECUTING, by id (as
    text); the others are left as they are.

    A group meeting a venue that is down (or the open breaker) fails all its calls: one transaction for them,
    not one each; at the simulated venue's 10 % of failures it was a sixth of the worker's time."""
    if not failures:
        return {}
    asked = {str(failure.order_id): failure for failure in failures}
    with transaction.atomic():
        state = store.lock() if any(not failure.retry for failure in failures) else None
        named, params = one_of(f"o.{_qn('id')}", [_order_pk(order_id) for order_id in asked])
        locked = _orders_locked(
            f"{named} AND o.{_qn('status')} = %s", [*params, OrderStatus.EXECUTING], tail=f" ORDER BY o.{_qn('id')}"
        )
        if not locked:
            return {}
        now = timezone.now()
        retrying: dict[int, list[Any]] = {}
        each = [(order, asked[str(order.pk)]) for order in locked]
        for order, failure in each:
            order.retry_count = failure.attempt
            if failure.retry:
                order.transition(OrderStatus.APPROVED)
                order.updated_at = now
                retrying.setdefault(failure.attempt, []).append(order.pk)
        _events_each(
            EventType.EXECUTION_ATTEMPT_FAILED,
            [
                (
                    order,
                    {
                        "attempt": failure.attempt,
                        "reason": failure.reason,
                        "will_retry": failure.retry,
                        "retry_in_seconds": failure.retry_in,
                    },
                )
                for order, failure in each
            ],
            changes=[
                _orders_status(ids, OrderStatus.APPROVED, now, retry_count=attempt) for attempt, ids in retrying.items()
            ],
        )
        for order, failure in each:
            if not failure.retry:
                assert state is not None
                _fail(state, order, failure.reason)
    for order, failure in each:
        _log(
            logging.WARNING,
            "execution_attempt_failed",
            order,
            attempt=failure.attempt,
            reason=failure.reason,
            retry=failure.retry,
        )
    return {str(order.pk): order for order in locked}


def execution_resting(*, order_id: Any, reason: str, market: Decimal | None) -> Order | None:
    """A limit order the market has not reached: back to APPROVED (cancellable, halted with its scope) to be
    checked again; no attempt counted. ORDER_RESTING is recorded once, when it first rests."""
    rested = executions_resting([(order_id, reason, market)])
    return rested[0] if rested else None


def executions_resting(rests: Sequence[tuple[Any, str, Decimal | None]]) -> list[Order]:
    """execution_resting for a group's orders, `(order_id, reason, market)` each, in one transaction: one
    UPDATE, the ORDER_RESTING events of those resting for the first time in one insert. The orders that were
    EXECUTING, in the order asked; the others are left as they are."""
    if not rests:
        return []
    asked = {str(order_id): (reason, market) for order_id, reason, market in rests}
    with transaction.atomic():
        named, params = one_of(f"o.{_qn('id')}", [_order_pk(order_id) for order_id, _, _ in rests])
        locked = _orders_locked(f"{named} AND o.{_qn('status')} = %s", [*params, OrderStatus.EXECUTING])
        if not locked:
            return []
        ids = [order.pk for order in locked]
        before = set(
            Event.objects.filter(order_id__in=ids, event_type=EventType.ORDER_RESTING).values_list(
                "order_id", flat=True
            )
        )
        now = timezone.now()
        for order in locked:
            order.transition(OrderStatus.APPROVED)
            order.updated_at = now
        _events_each(
            EventType.ORDER_RESTING,
            [
                (
                    order,
                    {
                        "reason": asked[str(order.pk)][0],
                        "limit": order.price,
                        "market": asked[str(order.pk)][1],
                        "side": order.side,
                    },
                )
                for order in locked
                if order.pk not in before
            ],
            changes=[_orders_status(ids, OrderStatus.APPROVED, now)],
        )
    for order in locked:
        _log(logging.INFO, "order_resting", order, reason=asked[str(order.pk)][0])
    position = {str(order_id): n for n, (order_id, _, _) in enumerate(rests)}
    return sorted(locked, key=lambda order: position[str(order.pk)])


def execution_unfilled(*, order_id: Any, reason: str) -> Order | None:
    """An order that may not rest (IOC, FOK, MARKET) and that the venue could not fill: CANCELLED, what it
    holds released, ORDER_CANCELLED by the venue."""
    with transaction.atomic():
        state = store.lock()
        order = _locked_order(order_id)
        if order is None or order.status != OrderStatus.EXECUTING:
            return None
        order_end(
            state=state,
            order=order,
            status=OrderStatus.CANCELLED,
            reason=reason,
            event_type=EventType.ORDER_CANCELLED,
            payload={"reason": reason[:500], "by": "venue", "leaves_quantity": order.leaves_quantity},
        )
    _log(logging.INFO, "order_unfilled", order, reason=reason)
    return order


def orders_expire(*, now: Any = None, limit: int = 1000) -> list[uuid.UUID]:
    """End the DAY orders of earlier UTC days still waiting (APPROVED: never sent, or resting at a venue;
    PARTIALLY_FILLED: the rest of one resting at the internal venue): EXPIRED, what they hold reserved
    released, out of the book, ORDER_EXPIRED. Orders at the venue this moment (EXECUTING) finish first; GTC
    orders do not expire."""
    now = now or timezone.now()
    day_start = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    waiting = list(
        Order.objects.filter(status__in=CANCELLABLE_STATUSES, time_in_force=TimeInForce.DAY, created_at__lt=day_start)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    expired: list[uuid.UUID] = []
    for order_id in waiting:
        with transaction.atomic():
            state = store.lock()
            order = _locked_order(order_id)
            if order is None or order.status not in CANCELLABLE_STATUSES:
                continue
            if not venue_cancel(order):
                continue  # filled at the venue meanwhile: its execution books it
            order_end(
                state=state,
                order=order,
                status=OrderStatus.EXPIRED,
                reason="Expired at the end of its UTC day (time in force DAY)",
                event_type=EventType.ORDER_EXPIRED,
                payload={
                    "time_in_force": "DAY",
                    "day": order.created_at.astimezone(dt.UTC).date().isoformat(),
                    "leaves_quantity": order.leaves_quantity,
                    "venue": order.venue,
                },
            )
        expired.append(order.pk)
        _log(logging.INFO, "order_expired", order)
    return expired


def execution_fail(*, order_id: Any, reason: str) -> Order | None:
    """End an open order FAILED: reservation released, EXECUTION_FAILED. None if it already ended."""
    with transaction.atomic():
        state = store.lock()
        order = _locked_order(order_id)
        if order is None or order.status not in OPEN_STATUSES:
            return None
        _fail(state, order, reason)
    return order


def enqueue(
    order_id: Any,
    correlation_id: Any = None,
    *,
    countdown: float | None = None,
    resume: bool = False,
    with_ids: Sequence[Any] = (),
    wake: bool = False,
    attempt: int | None = None,
    recheck: bool = False,
) -> bool:
    """Queue an execution attempt; never waits on a broker that is down (orders.publish). `with_ids`: orders
    executed in the same group (one message for a submission batch's approved orders, for a group's orders
    resting at the venue, or for a group's retries after the same attempt; at most EXECUTION_GROUP_MAX in
    all). `attempt`: the attempt the message is for (1 for a submission's, k + 1 for the retry after failed
    attempt k): once that attempt has run, with another order's group, the message is stale and skipped (a
    retry's message then takes the others it names that wait), so a retry's backoff is never cut short by an
    older message. `recheck`: the re-check of resting orders, skipped for those checked (or amended) since.

    False: the broker is down and the message is parked; it is sent within about a second of the broker's
    return, and should this process die first, the worker's requeue on reconnect or the sweeper queues it.
    """
    from orders.publish import Message, publisher

    kwargs: dict[str, Any] = {"correlation_id": str(correlation_id) if correlation_id else None, "resume": resume}
    if with_ids:
        kwargs["with_ids"] = [str(other) for other in with_ids]
    if wake:
        kwargs["wake"] = True
    if attempt is not None:
        kwargs["attempt"] = attempt
    if recheck:
        kwargs["recheck"] = True
    return publisher().publish(Message(key=str(order_id), args=[str(order_id)], kwargs=kwargs, countdown=countdown))


def _wake_key() -> str:
    return f"{settings.EXECUTION_REDIS_PREFIX}:execution:wake"


def wake_claim() -> bool:
    """Whether the caller is to publish a wake-up: an execution message whose group takes, besides the orders
    it names, the orders waiting for a venue call (up to EXECUTION_GROUP_MAX, oldest first). True
    when no wake-up is waiting for a worker: the claim, a Redis key set if absent, is the caller's until a
    worker takes the message (order_execute releases it before taking its group) or EXECUTION_WAKE_SECONDS
    pass. False: one is waiting, and the caller's orders, committed before this, are in its group or, when
    that group is full, in the next wake-up's that it publishes.

    True as well without Redis or with EXECUTION_WAKE_SECONDS = 0 (a message per batch), and when Redis does
    not answer: a wake-up too many costs a message; one too few would leave orders to the sweeper."""
    seconds = settings.EXECUTION_WAKE_SECONDS
    if not settings.REDIS_URL or seconds <= 0 or settings.EXECUTION_GROUP_MAX <= 1:
        return True
    try:
        return bool(breaker.redis_client().set(_wake_key(), b"1", nx=True, px=max(1, int(seconds * 1000))))
    except Exception:  # noqa: BLE001 - Redis down: publish, as without it
        logger.debug("wake claim: Redis did not answer", exc_info=True)
        return True


def _wake_release() -> None:
    """A worker took a wake-up: from now on a committed batch publishes one (its orders might come after this
    group's read). Should Redis not answer, the claim lapses after EXECUTION_WAKE_SECONDS."""
    if not settings.REDIS_URL:
        return
    try:
        breaker.redis_client().delete(_wake_key())
    except Exception:  # noqa: BLE001 - the claim expires on its own
        logger.warning("wake release: Redis did not answer; the claim lapses in %ss", settings.EXECUTION_WAKE_SECONDS)


def order_execute(
    *,
    order_id: Any,
    correlation_id: Any = None,
    resume: bool = False,
    with_ids: Sequence[Any] = (),
    wake: bool = False,
    attempt: int | None = None,
    recheck: bool = False,
) -> Outcome:
    """One execution attempt of an order (what the Celery task calls), and of the orders waiting for their
    first venue call or due for a retry that join it (executions_start, up to EXECUTION_GROUP_MAX): each is
    sent to the venue, then their fills are booked together (executions_complete). Queues the next attempt of
    any that is due one. Answers the asked order's outcome.

    `wake`: a wake-up (wake_claim): the claim is released before the group is taken, so that any batch that
    commits from then on publishes its own; the group is taken even when the asked order went with another;
    and a full group publishes the next wake-up, since more orders may be waiting. `recheck`: orders resting
    at the venue, checked again together (executions_start)."""
    context.bind(correlation=context.parse_uuid(correlation_id))
    group_max = settings.EXECUTION_GROUP_MAX
    if wake:
        _wake_release()
    group = executions_start(
        order_id=order_id,
        resume=resume,
        group_max=group_max,
        with_ids=with_ids,
        wake=wake,
        attempt=attempt,
        recheck=recheck,
    )
    if wake and len(group) >= group_max and wake_claim():
        enqueue(group[-1].pk, group[-1].correlation_id, wake=True)
    if not group:
        return Outcome("SKIPPED")
    order = group[0]
    if order.venue == VenueCode.INTERNAL:  # alone: only SIM orders join a group
        from orders import internal

        return Outcome(internal.order_match(order_id=order.pk), attempt=order.retry_count + 1)
    fills, outcomes = _venue_calls(group)
    if fills:
        # A transaction and a hold of the risk lock per EXECUTION_BOOKING_MAX fills: a large group pays the
        # venue's latency once without holding up the submissions' batches for all of its bookings at once.
        size = max(1, settings.EXECUTION_BOOKING_MAX)
        booked: dict[Any, Order | None] = {}
        for start in range(0, len(fills), size):
            booked.update(executions_complete(fills[start : start + size]))
        for member_id, _, attempt in fills:
            done = "EXECUTED" if booked[member_id] is not None else "SKIPPED"
            outcomes[member_id] = Outcome(done, attempt=attempt or 1)
    return outcomes[order.pk]


@dataclass
class _Call:
    """One order's venue call in a group: its breaker permit and request, then the venue's answer."""

    order: Order
    permit: Any
    request: VenueOrder
    answer: Execution | None = None
    error: BaseException | None = None


def _venue_calls(group: Sequence[Order]) -> tuple[list[tuple[Any, Execution, int | None]], dict[Any, Outcome]]:
    """Send a group's EXECUTING orders to the venue through the circuit breaker: the fills, and the outcome
    of every order that got none (refused by the breaker, resting, cancelled, a retry queued, failed), each
    already recorded. On PostgreSQL the calls of a group run at the same time (a pool of EXECUTION_GROUP_MAX
    threads per process, which write nothing): a venue's latency is paid once per group, not once per order."""
    outcomes: dict[Any, Outcome] = {}
    calls: list[_Call] = []
    fails: list[_Fails] = []
    # the group's permits in one update of the breaker's state, its results in another (below)
    callers = [breaker.Caller(order.correlation_id, _about(order)) for order in group]
    for order, permit in zip(group, breaker.breaker_acquire_each(callers), strict=True):
        if isinstance(permit, breaker.BreakerOpen):
            reason = permit.reason
            reason = f"{BREAKER_OPEN_REASON}: {reason}" if reason != BREAKER_OPEN_REASON else reason
            fails.append(_Fails(order, reason))
            continue
        calls.append(_Call(order, permit, _venue_order(order)))
    if len(calls) == 1 or connection.vendor != "postgresql":
        # SQLite (the embedded mode) has one writer and its test databases one shared cache: a pool thread's
        # read of prices there would wait for this thread's transaction. One call after the other.
        for call in calls:
            _call(call)
    elif calls:
        for future in [_pool().submit(_call, call, close_connections=True) for call in calls]:
            future.result()
    breaker.breaker_record_each(
        [
            (call.permit, answered, breaker.Caller(call.order.correlation_id, _about(call.order)))
            for call in calls
            if (answered := _venue_answered(call)) is not None
        ]
    )
    fills: list[tuple[Any, Execution, int | None]] = []
    rests: list[_Rests] = []
    for call in calls:
        answer = _venue_answer(call)
        if isinstance(answer, Outcome):
            outcomes[call.order.pk] = answer
        elif isinstance(answer, _Rests):
            rests.append(answer)
        elif isinstance(answer, _Fails):
            fails.append(answer)
        else:
            fills.append((call.order.pk, answer, call.order.retry_count + 1))
    if rests:
        outcomes.update(_group_rests(rests))
    if fails:
        outcomes.update(_group_fails(fails))
    return fills, outcomes


def _group_rests(rests: Sequence[_Rests]) -> dict[Any, Outcome]:
    """The group's orders that rest at the venue: recorded together (executions_resting), then one re-check
    message for them all after VENUE_RECHECK_SECONDS (the first, with the others named): their re-check is one
    group, not a message and a lone venue call each."""
    rested = executions_resting([(rest.order.pk, rest.reason, rest.market) for rest in rests])
    _recheck_later(rested)
    status = {order.pk for order in rested}
    delay = settings.VENUE_RECHECK_SECONDS
    return {
        rest.order.pk: Outcome("RESTING", rest.reason, retry_in=delay, attempt=rest.order.retry_count + 1)
        if rest.order.pk in status
        else Outcome("SKIPPED", rest.reason, attempt=rest.order.retry_count + 1)
        for rest in rests
    }


def _group_fails(fails: Sequence[_Fails]) -> dict[Any, Outcome]:
    """The group's transient failures (the venue down or slow, the breaker open), recorded together
    (executions_attempt_failed); those with an attempt left are queued again after that attempt's backoff, one
    message per attempt number (the first, the others named), as one group: not a transaction, a message and a
    lone venue call each."""
    failures = []
    for fail in fails:
        attempt = fail.order.retry_count + 1
        retry = attempt < settings.EXECUTION_MAX_ATTEMPTS
        failures.append(
            AttemptFailed(fail.order.pk, fail.reason, attempt, retry, backoff_seconds(attempt) if retry else None)
        )
    recorded = executions_attempt_failed(failures)
    outcomes: dict[Any, Outcome] = {}
    retries: dict[int, list[Order]] = {}
    for failure in failures:
        order = recorded.get(str(failure.order_id))
        if order is None:
            outcomes[failure.order_id] = Outcome("SKIPPED", failure.reason, attempt=failure.attempt)
        elif not failure.retry:
            outcomes[failure.order_id] = Outcome("FAILED", failure.reason, attempt=failure.attempt)
        else:
            retries.setdefault(failure.attempt, []).append(order)
            outcomes[failure.order_id] = Outcome(
                "RETRY", failure.reason, retry_in=failure.retry_in, attempt=failure.attempt
            )
    for attempt, orders in retries.items():
        first, *others = orders
        enqueue(
            first.pk,
            first.correlation_id,
            countdown=backoff_seconds(attempt),
            attempt=attempt + 1,
            with_ids=[other.pk for other in others],
        )
    return outcomes


def _call(call: _Call, *, close_connections: bool = False) -> None:
    try:
        call.answer = venue().execute(call.request, timeout=settings.VENUE_TIMEOUT_SECONDS)
    except BaseException as exc:  # noqa: BLE001 - handed to _venue_answer, in the group's own thread
        call.error = exc
    finally:
        if close_connections:  # a pool thread: a database read of the venue's (prices without Redis) ends here
            connections.close_all()


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor  # noqa: PLW0603 - one per process, created on first use (after the pool's fork)
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=settings.EXECUTION_GROUP_MAX, thread_name_prefix="venue")
    return _executor


def _after_fork_in_child() -> None:
    global _executor, _executor_lock  # noqa: PLW0603 - a forked child has none of its parent's threads
    _executor, _executor_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _about(order: Order) -> dict[str, Any]:
    return {"order_id": str(order.pk), "symbol": order.symbol}


def _venue_answered(call: _Call) -> bool | None:
    """What the breaker counts of a call: True when the venue answered (a fill, a rejection, not marketable),
    False for a transient failure or an adapter's error, None for what is not ours to count (an interrupt)."""
    exc = call.error
    if exc is None or isinstance(exc, VenueNotMarketable):
        return True
    if isinstance(exc, VenueError):
        return not exc.transient  # a rejection is an answer: the venue is up
    return False if isinstance(exc, Exception) else None


@dataclass
class _Fails:
    """A transient failure of an order's call: recorded with its group's others (_group_fails)."""

    order: Order
    reason: str


@dataclass
class _Rests:
    """A limit order the venue could not fill yet: it rests (recorded with its group's, _group_rests)."""

    order: Order
    reason: str
    market: Decimal | None


def _venue_answer(call: _Call) -> Execution | Outcome | _Rests | _Fails:
    """What the venue's answer to one call means: its fill, an order that rests, or the outcome of an answer
    that is neither, recorded (the breaker was told of it with the group's, _venue_answered)."""
    order = call.order
    attempt = order.retry_count + 1
    exc = call.error
    if exc is None:
        assert call.answer is not None
        return call.answer
    if isinstance(exc, VenueNotMarketable):
        # The venue answered: the order rests until the market reaches its limit, or it ends; an IOC or FOK
        # order (or a market order beyond its protection) does not rest: it ends CANCELLED.
        if order.order_type == OrderType.MARKET or order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            execution_unfilled(order_id=order.pk, reason=f"{order.time_in_force} not filled: {exc.reason}")
            return Outcome("CANCELLED", exc.reason, attempt=attempt)
        return _Rests(order, exc.reason, exc.market)  # recorded with the group's others (_group_rests)
    if isinstance(exc, VenueError):
        if exc.transient:
            return _Fails(order, exc.reason)
        execution_attempt_failed(order_id=order.pk, reason=exc.reason, attempt=attempt, retry=False)
        return Outcome("FAILED", exc.reason, attempt=attempt)
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit, a task's hard limit: not ours to keep
        raise exc
    # an adapter bug or a time limit: transient, counted by the breaker
    logger.error("venue adapter raised for order %s", order.pk, exc_info=exc)
    return _Fails(order, f"Venue error: {type(exc).__name__}")


def orders_sweep(
    *, now: Any = None, limit: int = 500, stuck_after: float | None = None, statuses: Collection[str] = SWEPT_STATUSES
) -> list[uuid.UUID]:
    """Re-queue orders left APPROVED or EXECUTING past ORDER_STUCK_AFTER_SECONDS (ORDER_REQUEUED each).

    A lost message (broker down at submission, a worker killed before acking) loses no order. Each order
    is re-checked under its row lock (rows a worker holds are skipped) and its clock restarted, so an
    order is not re-queued again before the next deadline. Served by the partial index of open orders.

    Orders resting at the venue are not stuck: nothing records their checks (_recheck_pass); instead, while
    any rests, a re-check message is queued (_recheck_rearm), which runs the interval's pass should its chain
    of messages have been lost, and is dropped otherwise.
    """
    now = now or timezone.now()
    after = settings.ORDER_STUCK_AFTER_SECONDS if stuck_after is None else stuck_after
    deadline = now - timedelta(seconds=after)
    stuck = list(
        Order.objects.filter(status__in=statuses, updated_at__lt=deadline, resting_seq__isnull=True)
        .exclude(_resting_at_venue())
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )
    _recheck_rearm()
    requeued: list[uuid.UUID] = []
    for order_id in stuck:
        with transaction.atomic():
            order = (
                Order.objects.select_for_update(skip_locked=True)
                .filter(pk=order_id, status__in=statuses, updated_at__lt=deadline, resting_seq__isnull=True)
                .exclude(_resting_at_venue())
                .first()
            )
            if order is None:
                continue
            previous = order.status
            stuck_seconds = round((now - order.updated_at).total_seconds(), 3)
            order.updated_at = now
            order.save(update_fields=["updated_at"])
            resume = previous == OrderStatus.EXECUTING
            event_record(
                event_type=EventType.ORDER_REQUEUED,
                payload={"status": previous, "stuck_seconds": stuck_seconds, "resume": resume},
                order_id=order.pk,
                symbol=order.symbol,
                correlation_id=order.correlation_id,
            )
            transaction.on_commit(
                lambda o=order, r=resume: enqueue(o.pk, o.correlation_id, resume=r),  # type: ignore[misc]
                robust=True,
            )
        requeued.append(order.pk)
        _log(logging.WARNING, "order_requeued", order, previous_status=previous, stuck_seconds=stuck_seconds)
    return requeued


def _resting_at_venue() -> Q:
    """Orders resting at the simulated venue between their checks: APPROVED there, with ORDER_RESTING."""
    rested = Exists(Event.objects.filter(order_id=OuterRef("pk"), event_type=EventType.ORDER_RESTING))
    return Q(rested, status=OrderStatus.APPROVED, venue=VenueCode.SIM, resting_seq__isnull=True)


def _recheck_rearm() -> None:
    """A re-check message now, while any order rests at the venue: with the claim, it runs the pass unless one
    ran within the interval (_recheck_claim); without it, unless its order was checked since."""
    resting = Order.objects.filter(_resting_at_venue()).order_by("updated_at").values_list("pk", "correlation_id")
    first = resting.first()
    if first is not None:
        enqueue(first[0], first[1], countdown=0, recheck=True)


def orders_requeue_waiting(*, limit: int = 5000) -> list[uuid.UUID]:
    """On a worker's (re)connect to the broker: re-queue every order waiting APPROVED.

    All of them, however recent: an order whose publish failed a moment before the broker came back is as
    lost as an old one. Some may still have their message queued: the duplicate finds the order no longer
    APPROVED and is skipped. Not EXECUTING ones: a worker may be at the venue with them; the sweeper
    resumes those that are stuck. Nor those resting at the venue: one re-check message covers them.
    """
    return orders_sweep(limit=limit, stuck_after=0.0, statuses=(OrderStatus.APPROVED,))
