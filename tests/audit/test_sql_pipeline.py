"""core.sql: statements in one round trip behave like Django's own cursor where it matters to callers."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, transaction

from audit.models import Event, EventType
from core.sql import BulkInsert, bulk_insert, pipelined

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _event(**changes: object) -> Event:
    fields = {"event_type": EventType.ORDER_CREATED, "correlation_id": uuid.uuid4(), "payload": {"n": 1}}
    fields.update(changes)
    return Event(**fields)


def test_bulk_insert_when_several_rows_then_sequences_set_in_insertion_order() -> None:
    events = [_event(payload={"n": n}) for n in range(5)]
    bulk_insert(BulkInsert(Event, events))
    stored = list(Event.objects.order_by("sequence").values_list("sequence", "payload"))
    assert [e.sequence for e in events] == [sequence for sequence, _ in stored]
    assert [payload["n"] for _, payload in stored] == list(range(5))


def test_pipelined_when_a_statement_violates_a_unique_index_then_djangos_integrity_error() -> None:
    # Raw psycopg errors would escape `except IntegrityError` (a duplicate would be a 500, not a 409) and
    # the exception handler's 503 for a database that went away: they must come out as Django's.
    taken = _event()
    bulk_insert(BulkInsert(Event, [taken]))
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert(BulkInsert(Event, [_event(event_id=taken.event_id)]))
    assert Event.objects.count() == 1


def test_pipelined_when_several_selects_then_each_answers_its_rows_in_order() -> None:
    first, second, third = pipelined([("SELECT 1", []), ("SELECT %s::int + 1", [1]), ("SELECT 3 WHERE false", [])])
    assert (first, second, third) == ([(1,)], [(2,)], [])
