"""The trail's outside witness, on PostgreSQL: a superuser who cuts the tail, deletes a seal or replaces one is
reported by verify_audit with no operator input (FAILED, the first bad sequence, exit 1, never a traceback);
sealing stops loudly instead of re-sealing a shortened tail; a genuine rolled-back gap still verifies."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Max
from django.test import override_settings

from audit import integrity
from audit.integrity import crosscheck
from audit.models import Event, EventHash, EventType, Seal, Trail
from audit.services import event_record
from itirp import health
from tests.audit.conftest import legacy_gap, legacy_numbering, tamper

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _entries(folder: Path) -> list[dict[str, Any]]:
    (path,) = folder.glob("*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def _cut(*sequences: int, seals: tuple[int, ...] = ()) -> None:
    """Delete events, their hash records and seals as the superuser, append-only triggers off."""
    listed = ",".join(str(s) for s in sequences) or "NULL"
    statements = [f"DELETE FROM audit_event WHERE sequence IN ({listed})"]
    statements.append(f"DELETE FROM audit_eventhash WHERE sequence IN ({listed})")
    statements += [f"DELETE FROM audit_seal WHERE number = {n}" for n in seals]
    tamper(*statements)


def test_each_seal_is_witnessed_in_a_file_named_by_the_trail(record: Any, seal: Any, witness_dir: Path) -> None:
    record(3)
    (first,) = seal()
    record(2)
    (second,) = seal()
    trail = str(Trail.objects.get().trail_id)
    assert integrity.trail_identity() == trail
    assert [p.name for p in witness_dir.iterdir()] == [f"{trail}.jsonl"]
    entries = _entries(witness_dir)
    assert [(e["number"], e["seal_hash"], e["trail"]) for e in entries] == [
        (1, first.seal_hash, trail),
        (2, second.seal_hash, trail),
    ]
    assert entries[1]["previous_hash"] == first.seal_hash and entries[1]["gaps"] == []


@override_settings(AUDIT_SEAL_SETTLE_SECONDS=0)
def test_superuser_cuts_the_tail_then_failed_naming_the_first_missing_sequence(record: Any, seal: Any) -> None:
    """Issue 20, finding 1: the newest 5 events, the newest seal and its hash rows deleted; verify_audit used
    to re-seal the shortened tail and answer OK."""
    record(5)
    seal()
    cut = [e.sequence for e in record(5)]
    seal()
    _cut(*cut, seals=(2,))
    record(3)  # the platform goes on recording
    with pytest.raises(CommandError, match=f"FAILED: first bad event #{cut[0]} \\(deleted\\)"):
        call_command("verify_audit")
    assert list(Seal.objects.values_list("number", flat=True)) == [1]  # nothing re-sealed over the cut
    stopped = Event.objects.get(event_type=EventType.AUDIT_SEALING_STOPPED)
    assert stopped.payload["first_bad_sequence"] == cut[0]
    assert integrity.integrity_alarm() is not None
    verdict = health.run_checks({"audit": health.check_audit}, timeout=5)
    assert verdict["failing"] == ["audit"] and f"#{cut[0]}" in verdict["components"]["audit"]["error"]
    # Every later run says the same: the cut is never laundered into a "permanent gap".
    record(2)
    assert integrity.seal_pending(settle_seconds=0, gap_wait_seconds=0) == []
    with pytest.raises(CommandError, match=f"#{cut[0]}"):
        call_command("verify_audit", "--full")
    assert Event.objects.filter(event_type=EventType.AUDIT_SEALING_STOPPED).count() == 1  # once per cause


@pytest.mark.parametrize("witness", [["file"], ["none"]])
@override_settings(AUDIT_SEAL_SETTLE_SECONDS=0)
def test_only_the_seal_row_deleted_then_failed_report_no_traceback(record: Any, seal: Any, witness: list[str]) -> None:
    """Issue 20, finding 1: with the seal row gone and its hash rows left, verify_audit crashed on a duplicate
    key and beat's sealing failed on every run; --no-seal said OK. Even without a witness it is a report."""
    record(3)
    seal()
    second = record(3)
    seal()
    tamper("DELETE FROM audit_seal WHERE number = 2")
    record(1)
    with override_settings(AUDIT_WITNESS=witness):
        with pytest.raises(CommandError, match=f"FAILED: first bad event #{second[0].sequence} \\(seal\\)"):
            call_command("verify_audit", "--no-seal")
        with pytest.raises(CommandError, match=f"FAILED: first bad event #{second[0].sequence}"):
            call_command("verify_audit")  # seals first: stops loudly instead of a duplicate-key traceback
        assert integrity.seal_pending(settle_seconds=0, gap_wait_seconds=0) == []
    assert list(Seal.objects.values_list("number", flat=True)) == [1]
    assert EventHash.objects.count() == 6
    assert Event.objects.filter(event_type=EventType.AUDIT_SEALING_STOPPED).exists()


def test_a_replaced_seal_and_a_gap_the_witness_never_pinned_are_found(record: Any, seal: Any) -> None:
    """What the old sealer did after a cut (re-seal the shortened tail, then call the cut a gap), done with the
    witness switched off: switched back on, verification names the first event the witness saw sealed.
    (Under gapless numbering the sealer refuses such a cut: see the tests at the end.)"""
    legacy_numbering()
    record(4)
    seal()
    second = [e.sequence for e in record(4)]
    seal()
    _cut(*second[2:], seals=(2,))
    tamper(f"DELETE FROM audit_eventhash WHERE sequence IN ({second[0]}, {second[1]})")
    with override_settings(AUDIT_WITNESS=["none"]):
        (resealed,) = seal()
        record(2)
        (after,) = seal()
    assert resealed.number == 2 and resealed.last_sequence == second[1]
    assert after.gaps == [[second[2], second[3]]]  # the cut, laundered into a "permanent gap"
    report = integrity.verify()
    assert not report.ok
    assert (report.first.sequence, report.first.kind) == (second[2], "replaced")
    assert "was sealed as witnessed, not as now" in report.first.detail
    assert report.unwitnessed == 1  # seal 3, with the laundered gap: young, so on its way (see the next test)


def test_a_sealed_gap_the_witness_does_not_know_is_reported(record: Any, seal: Any, monkeypatch: Any) -> None:
    legacy_numbering()
    record(2)
    legacy_gap()
    record(2)
    with override_settings(AUDIT_WITNESS=["none"]):
        (only,) = seal()
    assert only.gaps
    monkeypatch.setattr(crosscheck, "GRACE", crosscheck.GRACE * 0)  # long past the witness's grace
    report = integrity.verify()
    assert report.first.kind == "witness" and "pinned by nothing" in report.first.detail


@override_settings(AUDIT_SEAL_SETTLE_SECONDS=0)
def test_a_rolled_back_append_leaves_no_gap_and_verifies(
    record: Any, witness_dir: Path, django_capture_on_commit_callbacks: Any
) -> None:
    before = record(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(event_type=EventType.LOGIN_FAILED, payload={"rolled": "back"})
        raise RuntimeError("roll back")
    after = record(2)
    assert after[0].sequence == before[-1].sequence + 1  # the number was given back
    with django_capture_on_commit_callbacks(execute=True):  # the seal's witness write, as on its commit
        call_command("verify_audit", "--full")
    (entry,) = _entries(witness_dir)
    assert entry["gaps"] == []
    assert Event.objects.filter(event_type=EventType.AUDIT_VERIFIED).latest("sequence").payload["ok"] is True


@override_settings(AUDIT_SEAL_SETTLE_SECONDS=0)
def test_a_legacy_rolled_back_gap_still_verifies_and_is_pinned(
    record: Any, witness_dir: Path, django_capture_on_commit_callbacks: Any
) -> None:
    legacy_numbering()
    before = record(2)
    legacy_gap()
    record(2)
    gap = before[-1].sequence + 1
    with django_capture_on_commit_callbacks(execute=True):  # the seal's witness write, as on its commit
        call_command("verify_audit", "--full")  # seals, verifies: OK
    (entry,) = _entries(witness_dir)
    assert entry["gaps"] == [[gap, gap]]
    assert Event.objects.filter(event_type=EventType.AUDIT_VERIFIED).latest("sequence").payload["ok"] is True


def test_a_witness_naming_another_trail_is_an_error(record: Any, seal: Any, witness_dir: Path) -> None:
    record(2)
    seal()
    (path,) = witness_dir.glob("*.jsonl")
    other = path.read_text().replace(integrity.trail_identity(), "00000000-0000-4000-8000-000000000000")
    path.write_text(other)  # a witness copied from another trail
    report = integrity.verify()
    assert report.first.kind == "witness" and "names trail 00000000" in report.first.detail
    record(1)
    assert seal() == []  # and the sealer will not go on past it
    assert "names trail" in integrity.integrity_alarm()["summary"]


def test_a_deleted_trail_identity_is_an_error_not_a_fresh_start(record: Any, seal: Any) -> None:
    record(2)
    seal()
    tamper("DELETE FROM audit_trail")
    report = integrity.verify()
    assert report.first.kind == "trail"
    record(1)
    assert seal() == [] and not Trail.objects.exists()


def test_an_unwritable_witness_stops_sealing_loudly(record: Any, seal: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    record(2)
    with override_settings(AUDIT_WITNESS_DIR=blocker / "witness"):
        assert seal() == []
    assert not Seal.objects.exists()
    assert "witness" in integrity.integrity_alarm()["summary"]


def test_syslog_witness_sends_each_seal(record: Any, seal: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        port = server.getsockname()[1]
        record(2)
        with override_settings(AUDIT_WITNESS=["file", "syslog"], AUDIT_WITNESS_SYSLOG_ADDRESS=f"127.0.0.1:{port}"):
            (only,) = seal()
        message = server.recv(65536).decode()
    assert "itirp-audit-witness" in message
    entry = json.loads(message[message.index("{") :].rstrip("\x00"))
    assert (entry["number"], entry["seal_hash"], entry["trail"]) == (1, only.seal_hash, integrity.trail_identity())


@override_settings(AUDIT_SEAL_SETTLE_SECONDS=0)
def test_verification_is_incremental_from_the_last_verified_seal_and_full_on_demand(record: Any) -> None:
    events = record(4)
    first = integrity.verify_and_record()
    assert first.ok and first.full and first.events == 4
    record(2)
    second = integrity.verify_and_record()
    assert second.ok and not second.full and second.from_seal == first.head_number
    assert second.events == 3  # the two new events and the first AUDIT_VERIFIED, not the four before
    # A change (not a deletion) before the last verified seal is the full run's to find.
    tamper("UPDATE audit_event SET payload = '{\"i\": 7}' WHERE sequence = %s", params=[events[1].sequence])
    assert integrity.verify_and_record().ok
    full = integrity.verify_and_record(full=True)
    assert (full.first.sequence, full.first.kind) == (events[1].sequence, "changed")
    assert integrity.integrity_alarm() is not None


# --- Gapless numbering (audit/migrations/0006): a deletion before the next seal is not a rollback -------------


@override_settings(AUDIT_SEAL_SETTLE_SECONDS=0)
def test_an_event_deleted_before_it_was_sealed_stops_sealing_and_fails_verification(record: Any, seal: Any) -> None:
    record(3)
    seal()
    unsealed = [e.sequence for e in record(4)]
    _cut(unsealed[1])  # deleted by the superuser before the sealer came by: once a "rolled-back gap"
    assert integrity.seal_pending(settle_seconds=0, gap_wait_seconds=0) == []
    stopped = Event.objects.get(event_type=EventType.AUDIT_SEALING_STOPPED)
    assert (stopped.payload["first_bad_sequence"], stopped.payload["kind"]) == (unsealed[1], "deleted")
    report = integrity.verify()
    assert (report.first.sequence, report.first.kind) == (unsealed[1], "deleted")


def test_the_newest_unsealed_events_cut_are_found_by_the_numbers_they_took(record: Any, seal: Any) -> None:
    record(3)
    seal()
    tail = [e.sequence for e in record(3)]
    _cut(*tail)  # no gap left behind, no seal covers them: only the counter still knows they were numbered
    report = integrity.verify()
    assert (report.first.sequence, report.first.kind) == (tail[0], "deleted")
    assert f"#{tail[0]}-#{tail[-1]}" in report.first.detail


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_commit_contiguous_sequences_and_rollbacks_give_theirs_back() -> None:
    """8 threads append events at once, a third of their transactions rolling back: the committed numbers
    are exactly the next ones, none skipped."""
    start = Event.objects.aggregate(top=Max("sequence"))["top"] or 0

    def write(n: int) -> None:
        try:
            for i in range(15):
                try:
                    with transaction.atomic():
                        event_record(event_type=EventType.LOGIN_FAILED, payload={"writer": n, "i": i})
                        if i % 3 == 0:
                            raise RuntimeError("roll back")
                except RuntimeError:
                    pass
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    committed = list(Event.objects.filter(sequence__gt=start).order_by("sequence").values_list("sequence", flat=True))
    assert len(committed) == 8 * 10
    assert committed == list(range(committed[0], committed[0] + len(committed)))
