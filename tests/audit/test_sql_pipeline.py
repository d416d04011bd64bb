"""core.sql: statements in one round trip behave like Django's own cursor where it matters to callers."""

from __future__ import annotations

import datetime
import gc
import json
import uuid
from decimal import Decimal

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from psycopg.types.array import ListDumper
from psycopg.types.json import Jsonb

from audit.models import Event, EventType
from core.sql import BulkInsert, bulk_insert, checked_by_first_trip, pipelined
from orders.models import Order, OrderStatus, Side
from tests.support.connections import as_a_new_request, health_checks, server_ends

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


_AWARE = datetime.datetime(2026, 11, 29, 8, 30, 1, 250000, tzinfo=datetime.UTC)
_ARRAYS = [
    ("text", ["plain", 'a "quote"', "back\\slash", "comma, {brace}", "NULL", "", " spaced ", None, "ünï"]),
    ("varchar", [OrderStatus.APPROVED, Side.BUY]),  # str subclasses (TextChoices): their values
    ("bigint", [1, -2, 10**15, None]),
    ("numeric", [Decimal("1.50"), Decimal("1E+2"), Decimal("-0.00000001"), None]),
    ("uuid", [uuid.UUID(int=7), None]),
    ("timestamptz", [_AWARE, None]),
    ("date", [datetime.date(2026, 11, 29)]),
    ("boolean", [True, False, None]),
    ("float8", [1.5, float("inf")]),  # no fast path: psycopg's own text dumper
    ("int", []),
]


@pytest.mark.parametrize(("kind", "values"), _ARRAYS, ids=[kind for kind, _ in _ARRAYS])
def test_pipelined_when_a_list_parameter_then_postgresql_reads_every_element_back(kind: str, values: list) -> None:
    # Lists go as one text literal written by core.sql (psycopg's ListDumper was 17 % of a submission's CPU):
    # quotes, backslashes, commas, braces, the word NULL, empty strings and None must all arrive as they were.
    (rows,) = pipelined([(f"SELECT %s::{kind}[]", [values])])
    assert rows == [([v.value if isinstance(v, OrderStatus | Side) else v for v in values],)]


def test_pipelined_when_lists_of_json_nested_and_untyped_any_then_read_back_as_psycopg_would() -> None:
    payloads = [Jsonb({"q": 'say "hi"\\', "n": [1, None]}), None]
    matched, nested, payload, special = pipelined(
        [
            ("SELECT x FROM (VALUES ('a'::varchar), ('b')) AS t (x) WHERE x = ANY(%s)", [["a", "c"]]),
            ("SELECT %s::int[]", [[[1, 2], [3, 4]]]),
            ("SELECT %s::jsonb[]", [payloads]),
            ("SELECT %s::numeric[]", [[Decimal("NaN"), Decimal("Infinity")]]),
        ]
    )
    assert matched == [("a",)]
    assert nested == [([[1, 2], [3, 4]],)]
    # Django's connection reads jsonb as its text (Django decodes JSON itself)
    assert [json.loads(text) if text else text for text in payload[0][0]] == [{"q": 'say "hi"\\', "n": [1, None]}, None]
    assert [str(value) for value in special[0][0]] == ["NaN", "Infinity"]


def test_pipelined_when_lists_dumped_then_no_reference_cycle_left_for_the_collector() -> None:
    statements = [
        ("SELECT %s::int[], %s::varchar[]", [[1, 2], ["a", None]]),
        ("SELECT %s::jsonb[]", [[Jsonb({"n": 1})]]),  # psycopg's own dumper, through the connection's adapters
    ]
    pipelined(statements)  # the statements' texts and dumpers in their caches
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage instead of freed
    try:
        for _ in range(3):
            ints, payload = pipelined(statements)
        gc.collect()
        cyclic = [type(o).__name__ for o in gc.garbage if type(o).__module__.startswith(("psycopg", "core"))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert ints == [([1, 2], ["a", None])] and json.loads(payload[0][0][0]) == {"n": 1}
    # each statement's Transformer and its loaders and dumpers were garbage in a cycle through the list dumper
    assert cyclic == []


def test_pipelined_when_list_parameters_then_not_psycopgs_list_dumper(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("psycopg's ListDumper dumped a list of core.sql")

    monkeypatch.setattr(ListDumper, "dump", refuse)
    events = [_event(payload={"n": n}, symbol="SYM") for n in range(3)]
    bulk_insert(BulkInsert(Event, events))  # every column one array
    assert Event.objects.filter(symbol="SYM").count() == 3


def test_bulk_insert_when_values_need_no_preparation_then_django_prepares_only_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # str, UUID, finite Decimal, aware datetime, int, bool pass as they are (Django's preparation answers them
    # unchanged on PostgreSQL); JSON, None, an enum member go through Django; the rows read back the same.
    from django.db.models import Field
    from django.utils import timezone

    from core.sql import _prepared

    prepared: list[str] = []
    real = Field.get_db_prep_save
    monkeypatch.setattr(
        Field, "get_db_prep_save", lambda self, *a, **k: prepared.append(self.name) or real(self, *a, **k)
    )
    events = [_event(symbol="SYM", order_id=None, timestamp=timezone.now()) for _ in range(2)]
    bulk_insert(BulkInsert(Event, events))
    assert sorted(set(prepared)) == ["address", "causation_id", "event_type", "order_id", "payload"]
    stored = Event.objects.get(sequence=events[0].sequence)
    assert (stored.symbol, stored.timestamp, stored.event_id) == ("SYM", events[0].timestamp, events[0].event_id)

    field = Order._meta.get_field("quantity")
    for value in (Decimal("1.50"), Decimal("NaN"), None):
        try:
            expected = real(field, value, connection)
        except Exception as refused:  # noqa: BLE001 - the same refusal either way
            with pytest.raises(type(refused)):
                _prepared(field, value, connection)
        else:
            assert _prepared(field, value, connection) == expected
    naive = datetime.datetime(2026, 11, 29, 8, 0)  # noqa: DTZ001 - Django's own naive handling, kept
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        _prepared(Event._meta.get_field("timestamp"), naive, connection)


# --- the statements as the connection's health check (CONN_HEALTH_CHECKS) ---------------------------------------
@pytest.mark.django_db(transaction=True)
def test_pipelined_when_the_server_ended_the_connection_before_a_read_then_it_answers_on_a_new_one() -> None:
    connection.ensure_connection()
    old = connection.connection.info.backend_pid
    as_a_new_request()
    server_ends(old)

    ((pid,),) = pipelined([("SELECT pg_backend_pid()", [])])[0]

    assert pid != old
    assert Event.objects.count() == 0  # the connection serves Django's own statements too


@pytest.mark.django_db(transaction=True)
def test_pipelined_when_a_write_finds_the_connection_ended_then_it_fails_and_is_not_sent_again() -> None:
    connection.ensure_connection()
    as_a_new_request()
    server_ends(connection.connection.info.backend_pid)

    with pytest.raises(OperationalError):
        bulk_insert(BulkInsert(Event, [_event()]))

    assert Event.objects.count() == 0  # and the next statement has a new connection


@pytest.mark.django_db(transaction=True)
def test_pipelined_when_it_was_answered_then_the_request_asks_no_select_1_before_its_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checks = health_checks(monkeypatch)
    as_a_new_request()

    pipelined([("SELECT 1", [])])  # a submission's authentication, say
    with transaction.atomic():  # then its batch
        bulk_insert(BulkInsert(Event, [_event()]))

    assert checks == []
    assert Event.objects.count() == 1
    # without a statement of ours first, Django's own check still runs once, as before
    as_a_new_request()
    with transaction.atomic():
        Event.objects.exists()
    assert checks == [True]


def _transaction_reading_first() -> int:
    """A transaction as a submission batch makes it: a pipelined read first, then its writes."""
    with transaction.atomic():
        ((pid,),) = pipelined([("SELECT pg_backend_pid()", [])])[0]
        bulk_insert(BulkInsert(Event, [_event()]))
    return pid


@pytest.mark.django_db(transaction=True)
def test_checked_by_first_trip_when_the_connection_is_sound_then_no_select_1_and_one_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checks = health_checks(monkeypatch)
    as_a_new_request()

    checked_by_first_trip(_transaction_reading_first)

    assert checks == []
    assert Event.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_checked_by_first_trip_when_the_server_ended_the_connection_then_the_transaction_runs_once_on_a_new_one() -> (
    None
):
    connection.ensure_connection()
    old = connection.connection.info.backend_pid
    as_a_new_request()
    server_ends(old)
    runs: list[int] = []

    def transaction_counted() -> int:
        runs.append(1)
        return _transaction_reading_first()

    pid = checked_by_first_trip(transaction_counted)

    assert pid != old and len(runs) == 2
    assert Event.objects.count() == 1  # the first attempt reached nothing; the second committed once


@pytest.mark.django_db(transaction=True)
def test_checked_by_first_trip_when_the_connection_ends_after_the_first_trip_then_the_error_and_no_second_run() -> None:
    connection.ensure_connection()
    as_a_new_request()
    runs: list[int] = []

    def ends_midway() -> None:
        runs.append(1)
        with transaction.atomic():
            pipelined([("SELECT 1", [])])
            server_ends(connection.connection.info.backend_pid)
            bulk_insert(BulkInsert(Event, [_event()]))

    with pytest.raises(OperationalError):
        checked_by_first_trip(ends_midway)

    assert len(runs) == 1
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "text",
    ["2026-11-30 13:02:27.540284+00", "2026-11-30 23:59:59+05:30", "1999-01-01 00:00:00-08", "2026-03-29 01:00:00+00"],
)
def test_timestamps_when_read_on_postgresql_then_utc_in_c_as_djangos_loader_reads_them(text: str) -> None:
    """Django's own loader is a Python subclass of psycopg's Python loader: every timestamp of every query read
    in Python. The connection reads them with psycopg's C loader, the same instant with the same tzinfo."""
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader
    from psycopg.postgres import types

    from core.sql import UtcTimestamptzLoader

    connection.ensure_connection()
    adapters = connection.connection.adapters
    assert adapters.get_loader(types["timestamptz"].oid, psycopg.pq.Format.TEXT) is UtcTimestamptzLoader
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [text])
        fast = cursor.fetchone()[0]
    ours = pipelined([("SELECT %s::timestamptz", [text])])[0][0][0]

    class Djangos(BaseTzLoader):
        timezone = datetime.UTC

    reference = Djangos(types["timestamptz"].oid, connection.connection).load(text.encode())
    assert fast == ours == reference
    assert fast.tzinfo is ours.tzinfo is reference.tzinfo is datetime.UTC
    assert fast.isoformat() == reference.isoformat()


def test_orm_when_it_reads_a_datetime_then_the_same_value_and_type_as_before() -> None:
    """The ORM's reading (Django's create_cursor compares its loader's timezone with its own first)."""
    at = datetime.datetime(2026, 11, 30, 13, 2, 27, 540284, tzinfo=datetime.UTC)
    events = [_event(timestamp=at)]
    bulk_insert(BulkInsert(Event, events))
    read = Event.objects.values_list("timestamp", flat=True).get(sequence=events[0].sequence)
    assert read == at and read.tzinfo is datetime.UTC


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "2001:0db8:0000:0000:0000:0000:0000:0001", "", None])
def test_bulk_insert_when_events_carry_an_address_then_stored_as_django_stores_it(
    address: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An IPv4 address goes as the text it is (Django parsed it into an ipaddress object for psycopg to print
    back, for every event); IPv6 is still normalised by Django, an empty one still stored NULL."""
    from django.db.backends.postgresql import operations

    parsed: list[str] = []
    real = operations.Inet
    monkeypatch.setattr(operations, "Inet", lambda value: parsed.append(value) or real(value))
    ours = _event(address=address)
    bulk_insert(BulkInsert(Event, [ours]))
    assert len(parsed) == (1 if address and ":" in address else 0)  # IPv6 normalised by Django, then parsed
    (djangos,) = Event.objects.bulk_create([_event(address=address)])  # the ORM's own preparation
    stored = dict(
        Event.objects.filter(event_id__in=[ours.event_id, djangos.event_id]).values_list("event_id", "address")
    )
    expected = {"127.0.0.1": "127.0.0.1", "10.1.2.3": "10.1.2.3", "": None, None: None}
    assert stored[ours.event_id] == stored[djangos.event_id] == expected.get(address, "2001:db8::1")
