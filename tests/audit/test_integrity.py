"""verify_audit on PostgreSQL: a clean trail passes; each kind of tampering by a superuser who switched the
append-only triggers off is found, at the right event; seals chain, carry known gaps and are signed."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, OperationalError, connection, transaction
from django.test import override_settings

from audit import integrity
from audit.integrity import hashing, sealing
from audit.models import Event, EventHash, EventType, Seal
from audit.services import event_record
from tests.audit.conftest import legacy_gap, legacy_numbering, tamper

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

COPY_ROW = (
    "INSERT INTO audit_event (sequence, event_id, event_type, correlation_id, causation_id, order_id, symbol,"
    " actor_id, actor_username, address, timestamp, payload) SELECT %s, gen_random_uuid(), event_type,"
    " correlation_id, causation_id, order_id, symbol, actor_id, actor_username, address, timestamp, payload"
    " FROM audit_event WHERE sequence = %s"
)


def _seqs(events: list[Event]) -> list[int]:
    return [e.sequence for e in events]


def test_clean_trail_verifies_and_seals_chain(record: Any, seal: Any) -> None:
    record(5)
    first = seal()
    record(3)
    second = seal()
    assert len(first) == 1 and len(second) == 1
    assert second[0].previous_hash == first[0].seal_hash
    assert second[0].first_sequence == first[0].last_sequence + 1
    report = integrity.verify()
    assert report.ok, report.summary()
    assert (report.seals, report.events, report.unsealed) == (2, 8, 0)
    assert EventHash.objects.count() == 8


def test_a_seals_hash_records_go_in_as_core_sql_arrays(record: Any, seal: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # psycopg's Python ListDumper on Django's cursor was 15 % of a seal's CPU under load
    from psycopg.types.array import ListDumper

    def refuse(*args: object) -> None:
        raise AssertionError("a seal's arrays went through psycopg's ListDumper")

    record(4)
    monkeypatch.setattr(ListDumper, "dump", refuse)
    assert len(seal()) == 1
    monkeypatch.undo()
    assert EventHash.objects.count() == 4 and integrity.verify().ok


def test_a_seal_makes_no_model_instance_per_event(record: Any, seal: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Model.__init__ for each sealed event was 4 % of the worker's CPU under the order flow: the hash records
    # go to the database as four arrays, and what the rows say is the same (verify recomputes every hash)
    events = record(5)

    def refuse(self: EventHash, *args: object, **kwargs: object) -> None:
        raise AssertionError("a seal made an EventHash instance")

    monkeypatch.setattr(EventHash, "__init__", refuse)
    assert len(seal()) == 1
    monkeypatch.undo()
    rows = list(EventHash.objects.values_list("sequence", "event_id"))
    assert rows == [(e.sequence, e.event_id) for e in events]
    report = integrity.verify()
    assert report.ok and report.events == 5, report.summary()


def test_unsealed_events_are_counted_not_hidden(record: Any, seal: Any) -> None:
    record(2)
    seal()
    record(3)
    report = integrity.verify()
    assert report.ok and report.unsealed == 3


def test_changed_payload_is_found(record: Any, seal: Any) -> None:
    events = record(6)
    seal()
    target = events[3].sequence
    tamper("UPDATE audit_event SET payload = '{\"i\": 99}' WHERE sequence = %s", params=[target])
    report = integrity.verify()
    assert not report.ok
    assert (report.first.sequence, report.first.kind) == (target, "changed")


def test_change_with_triggers_disabled_by_alter_table_is_found(record: Any, seal: Any) -> None:
    events = record(4)
    seal()
    target = events[1].sequence
    tamper("UPDATE audit_event SET actor_username = 'someone' WHERE sequence = %s", params=[target], how="alter")
    report = integrity.verify()
    assert (report.first.sequence, report.first.kind) == (target, "changed")


def test_deleted_row_is_found(record: Any, seal: Any) -> None:
    events = record(6)
    seal()
    target = events[2].sequence
    tamper("DELETE FROM audit_event WHERE sequence = %s", params=[target])
    report = integrity.verify()
    assert (report.first.sequence, report.first.kind) == (target, "deleted")


def test_deleted_row_with_its_hash_record_is_still_found(record: Any, seal: Any) -> None:
    events = record(6)
    seal()
    target = events[2].sequence
    tamper(
        "DELETE FROM audit_event WHERE sequence = %s",
        "DELETE FROM audit_eventhash WHERE sequence = %s",
        params=[target],
    )
    report = integrity.verify()
    assert (report.first.sequence, report.first.kind) == (target, "deleted")


def test_swapped_order_is_found(record: Any, seal: Any) -> None:
    events = record(6)
    seal()
    a, b = events[2].sequence, events[3].sequence
    tamper(
        f"UPDATE audit_event SET sequence = -1 WHERE sequence = {a}",
        f"UPDATE audit_event SET sequence = {a} WHERE sequence = {b}",
        f"UPDATE audit_event SET sequence = {b} WHERE sequence = -1",
    )
    report = integrity.verify()
    assert (report.first.sequence, report.first.kind) == (a, "reordered")


def test_swapped_timestamps_are_found(record: Any, seal: Any) -> None:
    events = record(4)
    seal()
    a, b = events[0].sequence, events[1].sequence
    tamper(
        f"UPDATE audit_event SET timestamp = timestamp + interval '1 hour' WHERE sequence = {a}",
    )
    report = integrity.verify()
    assert (report.first.sequence, report.first.kind) == (a, "changed")
    assert b > a


def test_row_inserted_into_a_permanent_gap_is_found(record: Any, seal: Any) -> None:
    before = record(2)
    legacy_numbering()
    legacy_gap()  # a rolled-back append before gapless numbering left a permanent gap
    after = record(2)
    gap = before[-1].sequence + 1
    assert after[0].sequence == gap + 1
    (only,) = seal()
    assert only.gaps == [[gap, gap]] and only.event_count == 4
    assert integrity.verify().ok
    tamper(COPY_ROW, params=[gap, before[0].sequence])
    report = integrity.verify()
    assert (report.first.sequence, report.first.kind) == (gap, "inserted")


def test_row_inserted_before_the_first_seal_is_found(record: Any, seal: Any) -> None:
    events = record(3)
    seal()
    tamper(COPY_ROW, params=[events[0].sequence - 1, events[0].sequence])
    report = integrity.verify()
    assert (report.first.sequence, report.first.kind) == (events[0].sequence - 1, "inserted")


def test_event_and_its_hash_record_changed_together_are_found(record: Any, seal: Any) -> None:
    """An intruder who also rewrites the stored hash breaks the chain up to the seal."""
    events = record(4)
    seal()
    target = events[1].sequence
    tamper("UPDATE audit_event SET payload = '{\"i\": 42}' WHERE sequence = %s", params=[target])
    row = next(integrity.event_rows(Event.objects.filter(sequence=target)))
    forged = integrity.content_hash(integrity.canonical_content(row))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE audit_eventhash SET content_hash = %s WHERE sequence = %s", [forged, target])
        cursor.execute("SET LOCAL session_replication_role = origin")
    report = integrity.verify()
    assert not report.ok
    assert report.first.kind == "seal"


def test_a_trail_resealed_without_the_seal_key_is_refused(record: Any, seal: Any) -> None:
    record(3)
    with override_settings(AUDIT_SEAL_KEY="an intruder's guess"):
        seal()
        assert integrity.verify().ok  # consistent with itself...
    report = integrity.verify()  # ...but not signed with the platform's key
    assert not report.ok and "signature" in report.first.detail


def test_deleted_seal_breaks_the_chain(record: Any, seal: Any) -> None:
    record(2)
    seal()
    record(2)
    seal()
    record(2)
    seal()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM audit_seal WHERE number = 2")
        cursor.execute("SET LOCAL session_replication_role = origin")
    report = integrity.verify()
    assert not report.ok and report.first.kind in {"seal", "inserted"}


def test_seals_and_hash_records_are_append_only(record: Any, seal: Any) -> None:
    record(1)
    seal()
    for sql in ("UPDATE audit_seal SET event_count = 9", "DELETE FROM audit_eventhash"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)


@override_settings(AUDIT_SEAL_SETTLE_SECONDS=0)
def test_verify_command_exit_status_and_audit_verified_event(record: Any) -> None:
    events = record(3)
    call_command("verify_audit")  # seals first, then verifies: OK
    ok_event = Event.objects.filter(event_type=EventType.AUDIT_VERIFIED).latest("sequence")
    assert ok_event.payload["ok"] is True and ok_event.payload["first_bad_sequence"] is None
    tamper("DELETE FROM audit_event WHERE sequence = %s", params=[events[1].sequence])
    with pytest.raises(CommandError, match=f"first bad event #{events[1].sequence} \\(deleted\\)"):
        call_command("verify_audit")
    bad_event = Event.objects.filter(event_type=EventType.AUDIT_VERIFIED).latest("sequence")
    assert bad_event.payload["ok"] is False
    assert bad_event.payload["first_bad_sequence"] == events[1].sequence
    assert bad_event.payload["kind"] == "deleted"


def test_verify_command_checks_a_seal_hash_kept_outside(record: Any, seal: Any) -> None:
    record(2)
    (first,) = seal()
    call_command("verify_audit", "--no-record", f"--expect-seal={first.number}:{first.seal_hash}")
    with pytest.raises(CommandError):
        call_command("verify_audit", "--no-record", f"--expect-seal={first.number}:{'0' * 64}")


def test_settle_time_leaves_fresh_events_for_the_next_run(record: Any) -> None:
    record(2)
    assert integrity.seal_pending(settle_seconds=3600) == []
    assert len(integrity.seal_pending(settle_seconds=0)) == 1


def test_a_seal_reads_only_the_events_it_seals(record: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The events not settled yet are left in the database, not read whole (payload decoded) on every try:
    under load they are most of what follows the last seal."""
    record(3)
    time.sleep(0.3)
    record(5)
    payload = Event._meta.get_field("payload")
    decoded: list[Any] = []
    original = payload.from_db_value

    def counting(value: Any, expression: Any, conn: Any) -> Any:
        decoded.append(value)
        return original(value, expression, conn)

    monkeypatch.setattr(payload, "from_db_value", counting)
    seals = integrity.seal_pending(settle_seconds=0.2, gap_wait_seconds=0)
    assert [s.event_count for s in seals] == [3]
    assert len(decoded) == 3  # the five fresh ones were not read
    assert integrity.seal_pending(settle_seconds=3600) == []
    assert len(decoded) == 3  # nothing settled: no event read at all


def test_a_run_ends_with_its_first_partial_batch(record: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events that settle while a run seals wait for the next run: a run that chased them sealed a few at a
    time, each seal with its lock, checks and witness write, for as long as orders kept coming."""
    record(7)
    seal_next = sealing.seal_next

    def with_traffic(**options: Any) -> Any:
        sealed = seal_next(**options)
        record(1)  # an event settles (settle time 0) while the run goes on
        return sealed

    monkeypatch.setattr(sealing, "seal_next", with_traffic)
    seals = integrity.seal_pending(batch_size=3, settle_seconds=0, gap_wait_seconds=0)
    # 1-3, 4-6, 7-9 (two of them recorded meanwhile), then 10 alone: a partial batch ends the run
    assert [s.event_count for s in seals] == [3, 3, 3, 1]
    assert Event.objects.filter(sequence__gt=seals[-1].last_sequence).exists()  # the rest waits for the next run
    assert integrity.verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_writer_holding_a_lower_sequence_makes_later_writers_wait_so_the_sealer_never_sees_past_it(
    seal: Any,
) -> None:
    """Sequences are taken from a counter row held until commit (audit/migrations/0006): while one
    transaction holds a number, no other can take the next, so no committed event ever lies beyond one still
    in flight, and the seal has nothing to wait for."""
    with transaction.atomic():
        event_record(event_type=EventType.LOGIN_FAILED, payload={"n": 0})
    inserted, release, done = threading.Event(), threading.Event(), threading.Event()
    held: dict[str, int] = {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                held["seq"] = event_record(event_type=EventType.LOGIN_FAILED, payload={"n": "slow"}).sequence
                inserted.set()
                release.wait(20)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert inserted.wait(10)
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            event_record(event_type=EventType.LOGIN_FAILED, payload={"n": "fast"})
        assert [s.last_sequence for s in integrity.seal_pending(settle_seconds=0)] == [held["seq"] - 1]
    finally:
        release.set()
        done.wait(20)
        thread.join(20)
    with transaction.atomic():
        later = event_record(event_type=EventType.LOGIN_FAILED, payload={"n": "fast"}).sequence
    assert later == held["seq"] + 1
    seals = integrity.seal_pending(settle_seconds=0, gap_wait_seconds=0)
    assert seals[-1].last_sequence == later
    assert all(s.gaps == [] for s in Seal.objects.all())
    report = integrity.verify()
    assert report.ok and report.events == 3


def _json_dumps_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


CANONICAL_CASES = [
    {"b": 1, "a": [1, 2.5, None, True, False], "é": "ünïcode 😀 \u2028\x7f", "Z": {"y": "", "x": -0.0}},
    {"control": '\x00\x01\x1f"\\\n\t\r\b\f', "astral": {"\U0001f600": 1, "\uffff": 2, "\u00e9": 3, "A": 4}},
    {"floats": [1e16, 1e22, 0.1 + 0.2, 5e-324, 1.5e-7, 1e-05, 123456789.123, 1e15, 12345678901234567.0]},
    {"big": 2**64, "negative": -(2**63) - 1, "max": 2**63 - 1},
    {10: "integer keys", 9: "sorted as integers, then written as text"},
    {"text": "2e-3 looks like a float's exponent", "n": 3},
    {"nested": [[[{"deep": [1, {"k": "v"}]}]]], "empty": {}, "list": []},
]


@pytest.mark.parametrize("value", CANONICAL_CASES)
def test_canonical_json_when_any_json_value_then_the_text_json_dumps_writes(value):
    assert hashing.canonical_json(value) == _json_dumps_text(value)


def test_canonical_json_when_an_events_content_then_never_json_dumps(monkeypatch):
    content = {
        "event_id": "4f7bb9fc-8571-4b04-a39b-fa2666136dda",
        "sequence": 123456,
        "event_type": "EXECUTION_COMPLETED",
        "correlation_id": "01cc3ccf-5624-4703-9ea0-72a086a3b2c1",
        "causation_id": None,
        "order_id": "9a1d2c3b-1111-4222-8333-944455566677",
        "symbol": "SYM7",
        "actor_id": 2,
        "actor_username": "trader-é",
        "address": "127.0.0.1",
        "timestamp": "2026-11-30T15:37:02.123456+00:00",
        "payload": {"fill_quantity": "3", "fill_price": "100.25", "attempt": 1, "ratio": 0.25, "venue": "SIM"},
    }
    expected = _json_dumps_text(content)
    monkeypatch.setattr(hashing.json, "dumps", lambda *a, **k: pytest.fail("json.dumps called"))
    assert hashing.canonical_json(content) == expected


@pytest.mark.parametrize("value", [dt.datetime(2026, 11, 30, tzinfo=dt.UTC), {"at": dt.date(2026, 11, 30)}])
def test_canonical_json_when_not_json_then_refused_as_before(value):
    with pytest.raises(TypeError):
        hashing.canonical_json(value)
