"""Order submission, from a validated request to a committed decision: POST /api/v1/orders' use case.

    order_submit                 one request: its execution key, then the process's group commit
      -> _decide_batch           the submissions that arrived together, one transaction
         -> orders_decide        under one hold of the risk lock (risk.store.lock_and_read):
              duplicates refused, each order checked (risk.checks.check_order) on the state that includes
              the orders approved before it, orders and their three events inserted (audit.services),
              the approved orders' exposure reserved (risk.store.reserve_statements), in the inserts' round trip
      -> enqueue                 after the commit, one execution message for the batch's approved orders

A batch decides exactly what deciding its submissions one by one, in arrival order, would have decided
(tests/orders/test_group_commit.py). Nobody is answered before the batch commits.
"""

from __future__ import annotations

import functools
import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission
from rest_framework import status

from accounts.authentication import Unverified, unverified
from accounts.models import User
from audit.models import EventType
from audit.services import EventGroup, EventSpec, events_record_groups
from books import defaults, directory
from books.directory import BookRef
from books.models import DEFAULT_BOOK
from core import context
from core.exceptions import Conflict, InvalidInput, ItirpError
from core.metrics import RISK_LOCK_HOLD_SECONDS
from core.sql import BulkInsert, Statement, checked_by_first_trip, one_of
from orders.batching import GroupCommit
from orders.execution import enqueue, wake_claim
from orders.models import Order, OrderStatus, OrderType, TimeInForce, VenueCode
from risk import checks, store


class DuplicateOrder(Conflict):
    """409. The answer names the order already submitted, so a client whose first answer was lost can find it."""

    code = "duplicate_order"
    default_message = (
        "Duplicate order: an order with the same execution key "
        "(user, symbol, side, quantity, price, client_order_id) was already submitted"
    )

    def __init__(self, existing: Existing | None = None) -> None:
        details = {}
        if existing is not None:
            details = {
                "order_id": str(existing.order_id),
                "status": existing.status,
                "correlation_id": str(existing.correlation_id),
            }
        super().__init__(details=details)


class ClientOrderIdReused(Conflict):
    """409: the user already sent a different order with this client_order_id (FIX ClOrdID is unique per
    sender). The answer names that order."""

    code = "client_order_id_reused"
    default_message = "client_order_id already used for a different order"

    def __init__(self, existing: Existing, client_order_id: str) -> None:
        super().__init__(
            f"client_order_id {client_order_id!r} is already used by order {existing.order_id}: "
            "use a new one for a new order",
            details={"order_id": str(existing.order_id), "status": existing.status},
        )


class BookNotTradable(ItirpError):
    """403: the user has no `trade_book` grant on the book (recorded as ORDER_REFUSED)."""

    status_code = status.HTTP_403_FORBIDDEN
    code = "book_not_tradable"
    default_message = "You may not trade in this book"


class UnknownBook(InvalidInput):
    code = "unknown_book"


class CredentialsChanged(Exception):  # noqa: N818 - a condition the view handles, not an error answered
    """A submission authenticated from the process's last reading of its user (accounts.authentication,
    `put_off_for`) whose reading, taken again under the risk lock, changed: not decided, nothing written; the
    view authenticates it again by the query and submits it again."""


@dataclass(frozen=True)
class Existing:
    """The order that holds an execution key, as the duplicate look-up reads it."""

    order_id: uuid.UUID
    status: str
    correlation_id: uuid.UUID

    @classmethod
    def of_row(cls, order_id: Any, status: str, correlation_id: Any) -> Existing:
        # Raw rows: UUIDs from PostgreSQL, 32 hex digits from SQLite.
        return cls(uuid.UUID(str(order_id)), status, uuid.UUID(str(correlation_id)))


@dataclass(frozen=True)
class OrderRequest:
    """A validated order as the API's input serializer gives it."""

    symbol: str
    side: str
    quantity: Decimal
    price: Decimal | None  # None: a MARKET order
    strategy: str = "default"
    client_order_id: str | None = None
    book: str | None = None  # a book code; the user's default book if None
    venue: str = VenueCode.SIM
    order_type: str = OrderType.LIMIT
    time_in_force: str = TimeInForce.DAY

    @property
    def is_market(self) -> bool:
        return self.order_type == OrderType.MARKET

    def intent(self, market: checks.Market | None = None) -> checks.OrderIntent:
        """The order as the checks see it. A MARKET order (no price of its own) is checked at the reference
        price of its instrument; without one it is refused by the instrument checks (price 0 here)."""
        if self.is_market:
            reference = market.reference if market is not None and market.reference is not None else Decimal(0)
            return checks.OrderIntent(
                symbol=self.symbol,
                side=checks.Side(self.side),
                quantity=self.quantity,
                price=reference,
                market_order=True,
            )
        assert self.price is not None
        return checks.OrderIntent(
            symbol=self.symbol, side=checks.Side(self.side), quantity=self.quantity, price=self.price
        )

    @property
    def lifecycle_defaults(self) -> bool:
        """The seed's order: a DAY limit order to the simulated venue."""
        return (self.venue, self.order_type, self.time_in_force) == (
            VenueCode.SIM,
            OrderType.LIMIT,
            TimeInForce.DAY,
        )


def _canonical(number: Decimal) -> str:
    return format(number.normalize(), "f")


def execution_key(*, user_id: int, request: OrderRequest) -> str:
    """The seed's idempotency key: user, symbol, side, quantity, price, client_order_id (numbers canonical);
    an order that is not the seed's DAY limit order to SIM adds its venue, type and time in force."""
    parts = [
        str(user_id),
        request.symbol,
        request.side,
        _canonical(request.quantity),
        "MKT" if request.price is None else _canonical(request.price),
        request.client_order_id or "",
    ]
    if not request.lifecycle_defaults:
        parts += [request.venue, request.order_type, request.time_in_force]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Submission:
    """One order handed to a batch: who sends it, what it asks, and its request's context (the batch may be
    decided on another thread, which has a context of its own)."""

    user: User
    request: OrderRequest
    correlation_id: uuid.UUID
    address: str | None
    key: str
    book: BookRef
    unverified: Unverified | None = None  # the user's reading to take again under the lock

    @property
    def scopes(self) -> store.OrderScopes:
        return store.OrderScopes.of(
            desk=self.book.desk, book=self.book.code, trader=self.user.username, symbol=self.request.symbol
        )


def book_for(user: User, code: str | None) -> BookRef:
    """The book an order goes to: the one named (400 if unknown), else the user's default book (MAIN for a
    user who has none). Whether the user may trade it is decided under the risk lock."""
    if code is not None:
        ref = directory.by_code(code)
        if ref is None:
            raise UnknownBook(f"Unknown book {code!r}")
        return ref
    if user.default_book_id is not None:
        return directory.by_id(user.default_book_id)
    return directory.by_code(DEFAULT_BOOK) or directory.by_id(defaults.default_book().pk)


Decided = tuple[Order, checks.Decision]


def order_submit(*, user: User, request: OrderRequest, correlation_id: uuid.UUID | None = None) -> Decided:
    """Decide and record one order: approved or rejected, with its three events, committed before this
    returns; a duplicate raises DuplicateOrder (409) and writes nothing. Queued for execution if approved.

    The submissions that arrive in this process while another batch is committing are decided and committed
    together; inside a caller's transaction the order is decided alone, in that transaction, and queued
    once it commits."""
    submission = Submission(
        user=user,
        request=request,
        correlation_id=correlation_id or context.correlation_id(),
        address=context.client_address(),
        key=execution_key(user_id=user.pk, request=request),
        book=book_for(user, request.book),
        unverified=unverified(user),
    )
    if transaction.get_connection().in_atomic_block:
        outcome = orders_decide([submission])[0]
        if isinstance(outcome, Exception):
            raise outcome
        order, decision = outcome
        if decision.approved:
            transaction.on_commit(functools.partial(enqueue, order.pk, order.correlation_id), robust=True)
        return order, decision
    # the batch queued the execution of its approved orders once it committed (_decide_batch)
    return _group_commit().submit(submission)


@functools.cache
def _group_commit() -> GroupCommit[Submission, Decided]:
    return GroupCommit(_decide_batch, max_batch=settings.ORDER_BATCH_MAX)


def _decide_batch(submissions: Sequence[Submission]) -> list[Decided | Exception]:
    """A batch in its own transaction, then its approved orders queued for execution (_enqueue_batch)."""
    results = _batch_decided(submissions)
    _enqueue_batch([outcome[0] for outcome in results if not isinstance(outcome, Exception) and outcome[1].approved])
    return results


def _batch_decided(submissions: Sequence[Submission]) -> list[Decided | Exception]:
    """Should the unique index refuse the batch as a whole (an order inserted outside the risk lock), each
    order is decided again alone, so only the duplicate gets a 409: the key's owner is committed by then, so
    the duplicate is refused under the lock like any other, with its ORDER_REFUSED event (a lone submission
    too)."""
    try:
        # the lock's read is the connection's health check: no SELECT 1 of Django's at every batch
        return checked_by_first_trip(functools.partial(orders_decide, submissions))
    except DuplicateOrder:
        pass
    results: list[Decided | Exception] = []
    for submission in submissions:
        try:
            results += orders_decide([submission])
        except DuplicateOrder as exc:
            results.append(exc)
    return results


def _enqueue_batch(approved: Sequence[Order]) -> None:
    """One execution message for a committed batch's approved SIM orders (per EXECUTION_GROUP_MAX of them):
    the worker executes them as one group (orders.execution.order_execute), instead of a message, a task and
    a transaction per order. With Redis, none when a wake-up is already waiting for a worker (wake_claim): its
    group takes these orders too, so that a worker receives a message per group it runs rather than one per
    batch, most of which found their orders gone with another group. An order for the internal venue has a
    message of its own: it is matched alone, and a group takes SIM orders only. A message that is lost loses
    no order: the sweeper queues it again."""
    grouped = [order for order in approved if order.venue == VenueCode.SIM]
    for order in approved:
        if order.venue != VenueCode.SIM:
            enqueue(order.pk, order.correlation_id)
    if not grouped or not wake_claim():
        return
    size = max(1, settings.EXECUTION_GROUP_MAX)
    for start in range(0, len(grouped), size):
        first, *others = grouped[start : start + size]
        enqueue(first.pk, first.correlation_id, with_ids=[other.pk for other in others], wake=start == 0, attempt=1)


def orders_decide(submissions: Sequence[Submission]) -> list[Decided | Exception]:
    """Decide and record orders in one transaction, in the given order, under one hold of the risk lock.

    Lock the risk state and read it; refuse duplicates (the same execution key as a keyed order ever, or
    as a key-less one inside ORDER_DUPLICATE_WINDOW_SECONDS, also earlier in the batch) with a
    DuplicateOrder in their place; check each order on the state that includes the reservations of the
    orders approved before it, exactly as one-by-one decisions would; insert the orders as APPROVED or
    REJECTED, reserve the approved ones' exposure and volume, and append each order's ORDER_CREATED,
    RISK_CHECK_STARTED and RISK_CHECK_PASSED/FAILED. A submission whose user came from the process's last
    reading (Submission.unverified) is read again among the lock's reads; a changed answer puts
    CredentialsChanged in its place, nothing written for it."""
    window = timedelta(seconds=settings.ORDER_DUPLICATE_WINDOW_SECONDS)
    scopes = [scope for s in submissions for scope in s.scopes.all]
    commits = not transaction.get_connection().in_atomic_block  # this transaction's commit ends the hold
    try:
        with transaction.atomic():
            keys_query = _keys_taken(submissions, since=timezone.now() - window)
            grants_query = _grants(submissions)
            # the users read from the process's last reading, read again (accounts.authentication, `put_off_for`):
            # once per user, token and session, however many of the batch's orders came with them
            rereads = {s.unverified.key: s.unverified.statement() for s in submissions if s.unverified is not None}
            locked = store.lock_and_read(
                scopes=scopes,
                symbols=sorted({s.request.symbol for s in submissions}),
                also=[*(q for q in (grants_query, keys_query) if q), *rereads.values()],
            )
            locked_at = time.perf_counter()
            now = timezone.now()  # under the lock: creation times follow the order of decisions
            own_rows = iter(locked.rows)
            tradable = {(int(user_id), int(book_id)) for user_id, book_id in next(own_rows)} if grants_query else set()
            key_rows = next(own_rows) if keys_query else ()
            reread = dict(zip(rereads, own_rows, strict=True))
            taken: dict[str, Existing] = {}
            # (user, client_order_id) -> the key of the order that holds it (FIX: ClOrdID unique per sender)
            ids: dict[tuple[int, str], tuple[str, Existing]] = {}
            for key, user_id, client_order_id, *rest in key_rows:
                existing = Existing.of_row(*rest)
                if client_order_id is None:
                    taken[key] = existing
                else:
                    ids[(int(user_id), client_order_id)] = (key, existing)
            snapshot = locked.snapshot
            outcomes: list[Decided | Exception] = []
            reservations: list[store.Reservation] = []
            groups: list[EventGroup] = []
            for submission in submissions:
                if submission.unverified is not None and not submission.unverified.holds(
                    reread[submission.unverified.key]
                ):
                    submission.unverified.forget()
                    outcomes.append(CredentialsChanged())
                    continue
                if not submission.user.is_superuser and (submission.user.pk, submission.book.id) not in tradable:
                    outcomes.append(BookNotTradable(f"You may not trade in book {submission.book.code}"))
                    groups.append(_refusal(submission, "book_not_tradable"))
                    continue
                client_id = submission.request.client_order_id
                if client_id is not None and (submission.user.pk, client_id) in ids:
                    key, existing = ids[(submission.user.pk, client_id)]
                    refused: Conflict = (
                        DuplicateOrder(existing) if key == submission.key else ClientOrderIdReused(existing, client_id)
                    )
                    outcomes.append(refused)
                    groups.append(_refusal(submission, refused.code, existing=existing))
                    continue
                if submission.key in taken:
                    outcomes.append(DuplicateOrder(taken[submission.key]))
                    groups.append(_refusal(submission, DuplicateOrder.code, existing=taken[submission.key]))
                    continue
                order_scopes = submission.scopes
                market = locked.markets.get(submission.request.symbol)
                intent, decision = checks.check_at_market(
                    submission.request.intent(market),
                    market,
                    order_scopes.all,
                    order_scopes.book,
                    snapshot,
                    now,
                )
                order = _new_order(submission, decision, now, intent)
                if submission.request.is_market and decision.approved:
                    order.protection_price = _protection(intent, snapshot, order_scopes.all)
                # a later order of the batch with the same key or client order id is a duplicate of this one
                if client_id is not None:
                    ids[(submission.user.pk, client_id)] = (
                        submission.key,
                        Existing(order.pk, order.status, order.correlation_id),
                    )
                elif window:
                    taken[submission.key] = Existing(order.pk, order.status, order.correlation_id)
                if decision.approved:
                    snapshot = snapshot.with_reservation(intent, order_scopes.all)
                    reservations.append(store.Reservation.of_intent(intent, order_scopes))
                outcomes.append((order, decision))
                groups.append(
                    EventGroup(
                        _decision_events(order, decision, submission.book),
                        actor=submission.user,
                        correlation_id=submission.correlation_id,
                        address=submission.address,
                    )
                )
            if groups:
                orders = [outcome[0] for outcome in outcomes if not isinstance(outcome, Exception)]
                # the reservations, the orders and their events: one round trip on PostgreSQL
                events_record_groups(
                    groups,
                    with_rows=[BulkInsert(Order, orders)] if orders else [],
                    changes=store.reserve_statements(state=locked.state, reservations=reservations),
                )
        if commits:
            RISK_LOCK_HOLD_SECONDS.observe(time.perf_counter() - locked_at)
    except IntegrityError as exc:
        if "execution_key" in str(exc) or "order_execution_key_unique" in str(exc):
            # Inserted by a transaction the lock did not see (the key's owner committed after our read):
            # the owner is committed now, read it for the answer.
            raise DuplicateOrder(_existing(submissions)) from exc
        raise
    return outcomes


def _protection(intent: checks.OrderIntent, snapshot: Any, scopes: Sequence[str]) -> Decimal | None:
    """A MARKET order's worst price: its reference moved against it by the strictest price collar of its
    scopes (none set: no bound but the venue's book)."""
    collars = [
        view.limits.price_collar_pct
        for scope in scopes
        if (view := snapshot.views.get(scope)) is not None and view.limits.price_collar_pct is not None
    ]
    if not collars or intent.price <= 0:
        return None
    move = intent.price * min(collars) / 100
    return (intent.price + move if intent.side == checks.Side.BUY else max(intent.price - move, PRICE_STEP)).quantize(
        PRICE_STEP
    )


PRICE_STEP = Decimal("0.00000001")


def _existing(submissions: Sequence[Submission]) -> Existing | None:
    keys = [s.key for s in submissions if s.request.client_order_id is not None]
    row = (
        Order.objects.filter(execution_key__in=keys, client_order_id__isnull=False)
        .values_list("id", "status", "correlation_id")
        .first()
    )
    return Existing.of_row(*row) if row else None


def _keys_taken(submissions: Sequence[Submission], *, since: datetime) -> Statement | None:
    """The query, run under the lock, for the batch's execution keys already used: by a keyed order ever,
    or by a key-less order created since `since` (the duplicate window, measured from before the lock).

    Written as SQL, not compiled by the ORM for every batch: on PostgreSQL its text is one of three whatever
    the batch's size (the values travel as arrays), so it is prepared once per connection."""
    keyed = [s for s in submissions if s.request.client_order_id is not None]
    keyless = [s.key for s in submissions if s.request.client_order_id is None]
    qn = connection.ops.quote_name
    clauses: list[str] = []
    params: list[Any] = []
    if keyed:
        # A client order id is unique per user: every order of the batch's users with one of its ids (the
        # pairs are picked out in Python; order_user_client_id_idx serves it).
        users, user_params = one_of(qn("user_id"), sorted({s.user.pk for s in keyed}))
        ids, id_params = one_of(qn("client_order_id"), sorted({str(s.request.client_order_id) for s in keyed}))
        clauses.append(f"({users} AND {ids})")
        params += [*user_params, *id_params]
    if keyless and settings.ORDER_DUPLICATE_WINDOW_SECONDS > 0:
        keys, key_params = one_of(qn("execution_key"), keyless)
        clauses.append(f"({keys} AND {qn('client_order_id')} IS NULL AND {qn('created_at')} >= %s)")
        params += [*key_params, connection.ops.adapt_datetimefield_value(since)]
    if not clauses:
        return None
    columns = ", ".join(
        qn(c) for c in ("execution_key", "user_id", "client_order_id", "id", "status", "correlation_id")
    )
    # Oldest first: for a key-less key, the dict built from the rows keeps the newest order of the window.
    sql = f"SELECT {columns} FROM {qn(Order._meta.db_table)} WHERE {' OR '.join(clauses)} ORDER BY {qn('created_at')}"  # noqa: S608
    return Statement(sql, params)


def _grants(submissions: Sequence[Submission]) -> Statement | None:
    """The query, run under the lock, for which of the batch's (user, book) pairs may trade: guardian's
    `trade_book` granted to the user or to one of the user's groups (roles are groups)."""
    users = sorted({s.user.pk for s in submissions if not s.user.is_superuser})
    books = sorted({str(s.book.id) for s in submissions if not s.user.is_superuser})
    if not users:
        return None
    qn = connection.ops.quote_name

    def permission(alias: str) -> str:
        return (
            f"JOIN {qn('auth_permission')} p ON p.{qn('id')} = {alias}.{qn('permission_id')} "
            f"JOIN {qn('django_content_type')} ct ON ct.{qn('id')} = p.{qn('content_type_id')} "
        )

    wanted = f"p.{qn('codename')} = 'trade_book' AND ct.{qn('app_label')} = 'books' AND ct.{qn('model')} = 'book'"
    user_of, user_params = one_of(f"u.{qn('user_id')}", users)
    book_of, book_params = one_of(f"u.{qn('object_pk')}", books)
    member_of, _ = one_of(f"m.{qn('user_id')}", users)
    group_book_of, _ = one_of(f"g.{qn('object_pk')}", books)
    membership = User.groups.through._meta.db_table
    sql = (
        f"SELECT u.{qn('user_id')}, u.{qn('object_pk')} FROM {qn(UserObjectPermission._meta.db_table)} u "  # noqa: S608
        f"{permission('u')}"
        f"WHERE {wanted} AND {user_of} AND {book_of} "
        f"UNION SELECT m.{qn('user_id')}, g.{qn('object_pk')} FROM {qn(GroupObjectPermission._meta.db_table)} g "
        f"{permission('g')}"
        f"JOIN {qn(membership)} m ON m.{qn('group_id')} = g.{qn('group_id')} "
        f"WHERE {wanted} AND {member_of} AND {group_book_of}"
    )
    return Statement(sql, [*user_params, *book_params, *user_params, *book_params])


def _refusal(submission: Submission, reason: str, *, existing: Existing | None = None) -> EventGroup:
    """ORDER_REFUSED for a submission refused before any check: the attempt stays in the trail beside the
    orders (its client_order_id finds it), written in the batch's own INSERT, so it costs approved orders
    nothing. A duplicate names the order that holds the key (not its order_id: the refusal is no event of
    that order's own trail)."""
    request = submission.request
    spec = EventSpec(
        EventType.ORDER_REFUSED,
        {
            "reason": reason,
            "book": submission.book.code,
            "symbol": request.symbol,
            "side": request.side,
            "quantity": request.quantity,
            "price": request.price,
            "client_order_id": request.client_order_id,
            **({"existing_order_id": str(existing.order_id)} if existing is not None else {}),
        },
        symbol=request.symbol,
    )
    return EventGroup(
        [spec], actor=submission.user, correlation_id=submission.correlation_id, address=submission.address
    )


def refused_throttled_record(*, user: User, body: Any, wait: float | None) -> None:
    """ORDER_REFUSED for a submission the rate limit refused (429) before it was read as an order: one event
    per refused request, with what the body said (unvalidated: cut to the columns' sizes), so the attempt
    is in the trail under its client_order_id. Approved orders never come here."""
    fields = body if isinstance(body, dict) else {}

    def text(key: str, size: int) -> str | None:
        value = fields.get(key)
        return str(value)[:size] if value is not None and value != "" else None

    symbol = (text("symbol", 20) or "").upper()
    with transaction.atomic():
        events_record_groups(
            [
                EventGroup(
                    [
                        EventSpec(
                            EventType.ORDER_REFUSED,
                            {
                                "reason": "throttled",
                                "retry_after_seconds": round(wait, 3) if wait is not None else None,
                                "book": text("book", 50),
                                "symbol": symbol or None,
                                "side": text("side", 10),
                                "quantity": text("quantity", 40),
                                "price": text("price", 40),
                                "client_order_id": text("client_order_id", 64),
                            },
                            symbol=symbol,
                        )
                    ],
                    actor=user,
                )
            ]
        )


def _new_order(submission: Submission, decision: checks.Decision, now: datetime, intent: checks.OrderIntent) -> Order:
    request = submission.request
    order = Order(
        correlation_id=submission.correlation_id,
        client_order_id=request.client_order_id,
        execution_key=submission.key,
        user=submission.user,
        book_id=submission.book.id,
        symbol=request.symbol,
        side=request.side,
        quantity=request.quantity,
        price=intent.price,
        strategy=request.strategy,
        venue=request.venue,
        order_type=request.order_type,
        time_in_force=request.time_in_force,
        exposure_price=intent.exposure_price,
        notional_price=intent.notional_price,
        status=OrderStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    order.transition(OrderStatus.RISK_CHECK)
    if decision.approved:
        order.transition(OrderStatus.APPROVED)
        order.leaves_quantity = request.quantity
    else:
        order.transition(OrderStatus.REJECTED)
        order.rejection_reason = decision.message
    return order


def _decision_events(order: Order, decision: checks.Decision, book: BookRef) -> list[EventSpec]:
    spec = functools.partial(EventSpec, order_id=order.pk, symbol=order.symbol)
    created = spec(
        EventType.ORDER_CREATED,
        {
            "symbol": order.symbol,
            "side": order.side,
            "quantity": order.quantity,
            "price": order.price,
            "strategy": order.strategy,
            "client_order_id": order.client_order_id,
            "user_id": order.user.username,
            "book": book.code,
            "desk": book.desk,
            **(
                {}
                if (order.venue, order.order_type, order.time_in_force) == ("SIM", "LIMIT", "DAY")
                else {"venue": order.venue, "order_type": order.order_type, "time_in_force": order.time_in_force}
            ),
        },
    )
    started = spec(EventType.RISK_CHECK_STARTED, {"checks": _checks_run(decision)}, causation_id=created.event_id)
    result: dict[str, Any] = {"message": decision.message}
    if order.notional_price is not None:  # valued at market: the prices the decision used
        result["valuation"] = {"exposure_price": order.exposure_price, "notional_price": order.notional_price}
    if decision.projected is not None:
        result["projected"] = _measures(decision.projected)
    if decision.approved:
        outcome = spec(EventType.RISK_CHECK_PASSED, result, causation_id=started.event_id)
    else:
        result.update(
            {
                "kill_switch": decision.kill_switch,
                "violations": breaches(decision),
            }
        )
        outcome = spec(EventType.RISK_CHECK_FAILED, result, causation_id=started.event_id)
    return [created, started, outcome]


def breaches(decision: checks.Decision) -> list[dict[str, Any]]:
    """API.md's `violations: [{code, scope, limit, projected}]` of a decision."""
    return [
        {"code": b.code.value, "scope": b.scope, "limit": b.limit, "projected": b.projected} for b in decision.breaches
    ]


def _checks_run(decision: checks.Decision) -> list[str]:
    if decision.kill_switch:
        return ["KILL_SWITCH"]
    return ["KILL_SWITCH", *[v.value for v in checks.SEED_CHECKS]]


def _measures(measures: checks.Measures) -> dict[str, Decimal]:
    return {
        "position": measures.position,
        "daily_volume": measures.daily_volume,
        "net_exposure": measures.net_exposure,
        "gross_exposure": measures.gross_exposure,
    }
