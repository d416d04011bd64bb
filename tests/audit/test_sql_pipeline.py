"""core.sql: statements in one round trip behave like Django's own cursor where it matters to callers."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

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


def test_bulk_insert_when_batches_differ_in_size_then_one_statement_text_and_every_value_kept() -> None:
    # One text for any number of rows: converted once by psycopg and prepared once by PostgreSQL, where a
    # multi-row VALUES list was a new statement for every batch size. NULLs, JSON and text survive the arrays.
    texts = set()
    for size in (1, 3, 7):
        events = [
            _event(payload={"n": n, "nested": [1, "two", None]}, symbol=("SYM" if n % 2 else ""), order_id=None)
            for n in range(size)
        ]
        with CaptureQueriesContext(connection) as captured:
            bulk_insert(BulkInsert(Event, events))
        texts.add(captured.captured_queries[-1]["sql"].split(" FROM UNNEST")[0])
        stored = {e.sequence: e for e in Event.objects.filter(sequence__in=[e.sequence for e in events])}
        assert [stored[e.sequence].payload for e in events] == [e.payload for e in events]
        assert [stored[e.sequence].symbol for e in events] == [e.symbol for e in events]
        assert all(stored[e.sequence].order_id is None for e in events)
    assert len(texts) == 1


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
