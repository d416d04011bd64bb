"""Verification: recompute seals and hash chains from the events, and check them against the witness.

Every seal is checked on every run (its chain, hash, signature and witness entry: cheap); the events
are re-hashed from the last verified seal on (recorded in the last successful AUDIT_VERIFIED event), or
all of them with `full`. A damaged trail is a report naming the first bad sequence, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError, connection, transaction

from audit.integrity.alarm import alarm_clear, alarm_raise
from audit.integrity.batches import unsealed_deletion
from audit.integrity.crosscheck import check_witness
from audit.integrity.hashing import (
    GENESIS,
    canonical_content,
    chain_step,
    content_hash,
    event_rows,
    expected_sequences,
    seal_fields,
    seal_hash_of,
    signature_holds,
)
from audit.integrity.report import MAX_PROBLEMS, Problem, TrailBroken, Verification
from audit.integrity.sealing import seal_pending, trail_identity
from audit.models import Event, EventHash, EventType, Seal
from audit.services import event_record

logger = logging.getLogger("itirp.audit")


class Peek:
    """An iterator of rows by sequence that can hand out every row below a bound."""

    def __init__(self, rows: Iterator[Any], key: Any) -> None:
        self._rows, self._key, self._next = rows, key, None
        self._advance()

    def _advance(self) -> None:
        self._next = next(self._rows, None)

    def upto(self, bound: int) -> list[Any]:
        taken: list[Any] = []
        while self._next is not None and self._key(self._next) <= bound:
            taken.append(self._next)
            self._advance()
        return taken


def _check_seal(seal: Seal, previous: Seal | None, report: Verification) -> None:
    expected_number = previous.number + 1 if previous else 1
    expected_previous = previous.seal_hash if previous else GENESIS
    at = seal.first_sequence
    if seal.number != expected_number:
        report.problems.append(Problem(at, "seal", f"seal {expected_number} is missing (found {seal.number})"))
    if seal.previous_hash != expected_previous:
        report.problems.append(Problem(at, "seal", f"seal {seal.number} does not chain to the seal before it"))
    if previous is not None and seal.first_sequence != previous.last_sequence + 1:
        report.problems.append(
            Problem(at, "seal", f"seal {seal.number} does not start where seal {previous.number} ends")
        )
    if seal_hash_of(seal_fields(seal)) != seal.seal_hash:
        report.problems.append(Problem(at, "seal", f"seal {seal.number} was altered (its hash does not match)"))
    if not signature_holds(seal):
        report.problems.append(
            Problem(at, "seal", f"seal {seal.number} signature invalid (forged, or signed with another key)")
        )


def _check_batch(
    seal: Seal,
    previous_hash: str,
    stored_rows: list[EventHash],
    actual_rows: list[dict[str, Any]],
    report: Verification,
) -> None:
    """Compare a seal's recorded hashes with the events as they are now."""
    stored = {h.sequence: h for h in stored_rows}
    actual = {row["sequence"]: row for row in actual_rows}
    stored_ids = {h.event_id: h.sequence for h in stored_rows}
    actual_ids = {row["event_id"]: row["sequence"] for row in actual_rows}
    problems = report.problems
    chain = previous_hash
    diverged_at: int | None = None
    count = 0
    for seq in expected_sequences(seal.first_sequence, seal.last_sequence, seal.gaps):
        count += 1
        record, row = stored.pop(seq, None), actual.pop(seq, None)
        if record is None:
            problems.append(Problem(seq, "deleted" if row is None else "seal", "sealed hash record is missing"))
            if row is not None:
                chain = chain_step(chain, content_hash(canonical_content(row)))
            continue
        chain = chain_step(chain, record.content_hash)
        if chain != record.chain_hash and diverged_at is None:
            diverged_at = seq
        if row is None:
            moved = actual_ids.get(record.event_id)
            kind = "reordered" if moved is not None else "deleted"
            problems.append(Problem(seq, kind, f"event {record.event_id} is gone from this place"))
            continue
        report.events += 1
        if row["event_id"] != record.event_id:
            kind = "reordered" if row["event_id"] in stored_ids else "changed"
            problems.append(Problem(seq, kind, f"holds event {row['event_id']}, sealed as {record.event_id}"))
        elif content_hash(canonical_content(row)) != record.content_hash:
            problems.append(Problem(seq, "changed", f"content of event {row['event_id']} differs from when sealed"))
    for seq in sorted(actual):
        problems.append(Problem(seq, "inserted", f"event {actual[seq]['event_id']} sits in a gap recorded when sealed"))
    for seq in sorted(stored):
        problems.append(Problem(seq, "seal", "hash record inside a recorded gap"))
    if count != seal.event_count:
        problems.append(
            Problem(seal.first_sequence, "seal", f"seal {seal.number} covers {count} events, says {seal.event_count}")
        )
    if diverged_at is not None or chain != seal.batch_hash:
        at = diverged_at if diverged_at is not None else seal.last_sequence
        problems.append(Problem(at, "seal", f"hash records of seal {seal.number} were altered"))


def _last_verified() -> tuple[int, str] | None:
    """The newest seal a successful verification covered (from its AUDIT_VERIFIED event), if any."""
    recent = Event.objects.filter(event_type=EventType.AUDIT_VERIFIED).order_by("-timestamp", "-sequence")
    for payload in recent.values_list("payload", flat=True)[:50]:
        if isinstance(payload, dict) and payload.get("ok") and payload.get("head_seal") and payload.get("head_hash"):
            return int(payload["head_seal"]), str(payload["head_hash"])
    return None


def verify(*, from_seal: int = 0, verified_hash: str | None = None) -> Verification:
    """Check every seal, the events of the seals after `from_seal` (0: all), the witness; count the rest."""
    report = Verification(full=from_seal == 0, from_seal=from_seal)
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                # One snapshot for seals, hashes and events, whatever is appended meanwhile.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            report.trail_id = trail_identity()
        except TrailBroken as exc:
            report.problems.append(exc.problem)
        seals = list(Seal.objects.order_by("number"))
        by_number = {seal.number: seal for seal in seals}
        head = seals[-1] if seals else None
        previous: Seal | None = None
        for seal in seals:
            _check_seal(seal, previous, report)
            previous = seal
        bound = head.last_sequence if head else 0
        stray = EventHash.objects.filter(sequence__gt=bound).order_by("sequence").values_list("sequence", flat=True)
        first_stray = stray.first()
        if first_stray is not None:
            report.add(
                first_stray, "seal", f"hash records from #{first_stray} lie beyond the last seal: a seal was deleted"
            )
        anchor = by_number.get(from_seal) if from_seal else None
        if from_seal and (anchor is None or anchor.seal_hash != verified_hash):
            at = anchor.first_sequence if anchor else bound + 1
            report.add(at, "replaced", f"seal {from_seal} is gone or changed since it was verified")
            anchor, report.from_seal, report.full = None, 0, True  # so everything is checked again
        if anchor is not None and Event.objects.filter(sequence__lte=bound).count() != sum(
            seal.event_count for seal in seals
        ):
            # An event deleted or slipped in before the last verified seal: one index-only count (well under
            # a second at 10M events) finds that; re-hashing everything names where.
            anchor, report.from_seal, report.full = None, 0, True
        after = anchor.last_sequence if anchor else -(2**63)
        events = Peek(
            event_rows(Event.objects.filter(sequence__gt=after, sequence__lte=bound)), key=lambda r: r["sequence"]
        )
        hashes = Peek(
            EventHash.objects.filter(sequence__gt=after, sequence__lte=bound)
            .order_by("sequence")
            .iterator(chunk_size=2000),
            key=lambda h: h.sequence,
        )
        for seal in seals:
            if anchor is not None and seal.number <= anchor.number:
                continue
            report.seals += 1
            for row in events.upto(seal.first_sequence - 1):
                report.add(row["sequence"], "inserted", "event outside every seal's range")
            for record in hashes.upto(seal.first_sequence - 1):
                report.add(record.sequence, "seal", "hash record outside every seal's range")
            try:
                _check_batch(
                    seal, seal.previous_hash, hashes.upto(seal.last_sequence), events.upto(seal.last_sequence), report
                )
            except (TypeError, ValueError) as exc:  # a seal row damaged beyond reading (its gaps, say)
                report.add(seal.first_sequence, "seal", f"seal {seal.number} cannot be read: {exc}")
            if len(report.problems) >= MAX_PROBLEMS:
                break
        report.unsealed = Event.objects.filter(sequence__gt=bound).count()
        deleted = unsealed_deletion(head.last_sequence if head else None)
        if deleted is not None:
            report.add(deleted.sequence, deleted.kind, deleted.detail)
        if head is not None:
            report.head_number, report.head_hash = head.number, head.seal_hash
    check_witness(report, trail_id=report.trail_id, seals=by_number)
    return report


def verify_and_record(*, seal_first: bool = True, full: bool = False, record: bool = True) -> Verification:
    """Seal what has settled, verify (from the last verified seal unless `full`), record the outcome as an
    AUDIT_VERIFIED event, and raise or clear the integrity alarm. A database error is a FAILED report."""
    try:
        if seal_first:
            seal_pending()
        checkpoint = None if full else _last_verified()
        if checkpoint is None:
            report = verify()
        else:
            report = verify(from_seal=checkpoint[0], verified_hash=checkpoint[1])
    except DatabaseError as exc:
        report = Verification(full=full)
        report.add(0, "seal", f"the trail could not be read: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    if record:
        try:
            with transaction.atomic():
                event_record(event_type=EventType.AUDIT_VERIFIED, payload=report.as_payload())
        except DatabaseError:
            logger.exception("the AUDIT_VERIFIED event could not be recorded")
    if report.ok:
        alarm_clear()
        logger.info("audit verification: %s", report.summary())
    else:
        alarm_raise(summary=report.summary(), source="verify")
        logger.error("audit verification: %s", report.summary())
    return report
