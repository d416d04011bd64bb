"""The one way events are written: inside the caller's transaction, in bulk when there are several."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from django.db import connection, transaction
from django.utils import timezone

from audit.models import Event, EventType
from core import context, metrics
from core.logs import events_logged
from core.sql import BulkInsert, Statement, bulk_insert


@dataclass(frozen=True)
class EventSpec:
    """What one event says; the actor, correlation and time are given by the batch it is recorded in."""

    event_type: EventType
    payload: dict[str, Any] = field(default_factory=dict)
    order_id: uuid.UUID | None = None
    symbol: str = ""
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    causation_id: uuid.UUID | None = None


class Actor(Protocol):
    """Who made a change: the signed-in user (accounts.User); an event keeps only its key and username."""

    @property
    def pk(self) -> Any: ...

    @property
    def username(self) -> str: ...


FROM_CONTEXT: Any = object()  # the address of the request being served on this thread


@dataclass(frozen=True)
class EventGroup:
    """Events of one change with its actor, correlation and address (a batch of submissions has several;
    it may be written on another thread than the one that served the request, so None means no address)."""

    specs: Sequence[EventSpec]
    actor: Actor | None = None
    correlation_id: uuid.UUID | None = None
    address: str | None = FROM_CONTEXT


def events_record(
    *,
    specs: Sequence[EventSpec],
    actor: Actor | None = None,
    correlation_id: uuid.UUID | None = None,
    address: str | None = None,
) -> list[Event]:
    """Append events in one INSERT. Must run inside the transaction of the change they record."""
    return events_record_groups(
        [EventGroup(specs, actor, correlation_id, address if address is not None else FROM_CONTEXT)]
    )


def events_record_groups(
    groups: Sequence[EventGroup], *, with_rows: Sequence[BulkInsert] = (), changes: Sequence[Statement] = ()
) -> list[Event]:
    """Append the events of several changes in one INSERT, in order (sequence follows the list); `with_rows`
    are the changes' own new rows and `changes` their own statements (UPDATEs), run first, all in the same
    round trip on PostgreSQL (bulk_insert)."""
    if not connection.in_atomic_block:
        raise RuntimeError("events must be recorded inside the transaction of the change they record")
    now = timezone.now()
    events = []
    for group in groups:
        correlation = group.correlation_id or context.correlation_id()
        address = context.client_address() if group.address is FROM_CONTEXT else group.address
        actor_id = getattr(group.actor, "pk", None)
        actor_username = getattr(group.actor, "username", "") or ""
        events += [
            Event(
                event_id=spec.event_id,
                event_type=spec.event_type,
                correlation_id=correlation,
                causation_id=spec.causation_id,
                order_id=spec.order_id,
                symbol=spec.symbol,
                actor_id=actor_id,
                actor_username=actor_username,
                address=address,
                timestamp=now,
                payload=spec.payload,
            )
            for spec in group.specs
        ]
    bulk_insert(*with_rows, BulkInsert(Event, events), before=changes)
    # Logged and counted once committed, never for a change that rolls back, and not while the caller's
    # locks (the risk lock of a submission) are still held.
    transaction.on_commit(partial(events_logged, events), robust=True)
    transaction.on_commit(partial(metrics.events_appended, events), robust=True)
    return events


def event_record(
    *,
    event_type: EventType,
    payload: dict[str, Any] | None = None,
    actor: Actor | None = None,
    correlation_id: uuid.UUID | None = None,
    order_id: uuid.UUID | None = None,
    symbol: str = "",
    causation_id: uuid.UUID | None = None,
    address: str | None = None,
) -> Event:
    spec = EventSpec(
        event_type=event_type, payload=payload or {}, order_id=order_id, symbol=symbol, causation_id=causation_id
    )
    return events_record(specs=[spec], actor=actor, correlation_id=correlation_id, address=address)[0]
