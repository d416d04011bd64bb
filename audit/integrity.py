"""Tamper evidence for the event store: canonical event hashes, sealed and chained batches, verification.

Events are appended without any extra lock. After commit a sealer (beat task `audit.seal`, and the
`verify_audit` / `export_audit` commands) takes, under its own advisory lock, the events in sequence
order up to a safe watermark and writes one EventHash row per event and one Seal per batch:

    content_hash = sha256(canonical content of the event)
    chain_hash   = sha256(previous chain_hash || content_hash)   (starting from the previous seal's hash)
    batch_hash   = chain_hash of the batch's last event
    seal_hash    = sha256(canonical JSON of the seal's fields, previous_hash included)
    signature    = HMAC-SHA256(seal key, seal_hash)           (the key lives outside the database)

Sequence values are handed out at INSERT but become visible at COMMIT, so a lower sequence can appear
after a higher one was seen. A missing sequence below the watermark is recorded as a permanent gap
only once no transaction that could hold it is still open (PostgreSQL: no client session of this
database whose transaction started before the higher sequence was seen); until then the batch stops
before it. A row inserted into a recorded gap later is reported as inserted.

`verify()` recomputes everything from the events and reports the first event that was changed,
deleted, inserted or reordered, or a seal whose chain, hash or signature does not hold.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from audit.models import Event, EventHash, EventType, Seal

logger = logging.getLogger("itirp.audit")

GENESIS = "0" * 64
# Any 64-bit number unique to this lock; pg_advisory locks are per database.
SEAL_LOCK_KEY = 0x17_1E_A0_D1_5E_A1
EVENT_FIELDS = (
    "sequence",
    "event_id",
    "event_type",
    "correlation_id",
    "causation_id",
    "order_id",
    "symbol",
    "actor_id",
    "actor_username",
    "address",
    "timestamp",
    "payload",
)


# --- canonical content and hashes ---------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def timestamp_text(value: dt.datetime) -> str:
    """UTC, microseconds, ISO 8601: the one text form of an event time in hashes and exports."""
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical_content(row: dict[str, Any]) -> dict[str, Any]:
    """The fields that make an event what it is, as JSON values (a row from Event.objects.values())."""
    return {
        "event_id": str(row["event_id"]),
        "sequence": int(row["sequence"]),
        "event_type": str(row["event_type"]),
        "correlation_id": str(row["correlation_id"]),
        "causation_id": _str_or_none(row["causation_id"]),
        "order_id": _str_or_none(row["order_id"]),
        "symbol": row["symbol"] or "",
        "actor_id": row["actor_id"],
        "actor_username": row["actor_username"] or "",
        "address": _str_or_none(row["address"]),
        "timestamp": timestamp_text(row["timestamp"]),
        "payload": row["payload"],
    }


def content_hash(content: dict[str, Any]) -> str:
    """sha256 of the canonical content: JSON with sorted keys, no spaces, UTF-8 (payload included as is)."""
    return hashlib.sha256(_json(content).encode("utf-8")).hexdigest()


def chain_step(previous: str, content: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + bytes.fromhex(content)).hexdigest()


def seal_fields(seal: Seal) -> dict[str, Any]:
    return {
        "number": int(seal.number),
        "first_sequence": int(seal.first_sequence),
        "last_sequence": int(seal.last_sequence),
        "event_count": int(seal.event_count),
        "gaps": [[int(a), int(b)] for a, b in seal.gaps],
        "batch_hash": seal.batch_hash,
        "previous_hash": seal.previous_hash,
        "sealed_at": timestamp_text(seal.sealed_at),
    }


def seal_hash_of(fields: dict[str, Any]) -> str:
    return hashlib.sha256(_json(fields).encode("utf-8")).hexdigest()


def _seal_key() -> bytes:
    key = settings.AUDIT_SEAL_KEY
    return key.encode("utf-8") if isinstance(key, str) else key


def key_id() -> str:
    return hashlib.sha256(b"itirp-seal-key:" + _seal_key()).hexdigest()[:16]


def signature_of(seal_hash: str) -> str:
    return hmac.new(_seal_key(), seal_hash.encode("ascii"), hashlib.sha256).hexdigest()


def event_rows(queryset: Any, *, chunk_size: int = 2000) -> Iterator[dict[str, Any]]:
    return queryset.order_by("sequence").values(*EVENT_FIELDS).iterator(chunk_size=chunk_size)


def expected_sequences(first: int, last: int, gaps: Iterable[Iterable[int]]) -> Iterator[int]:
    """The sequences a seal covers: its range without its recorded gaps."""
    current = first
    for start, end in sorted((int(a), int(b)) for a, b in gaps):
        yield from range(current, start)
        current = max(current, end + 1)
    yield from range(current, last + 1)


# --- sealing --------------------------------------------------------------------------------------


@dataclass
class _Batch:
    rows: list[dict[str, Any]]
    gaps: list[list[int]]


def _gaps_of(start: int, rows: list[dict[str, Any]]) -> list[list[int]]:
    gaps: list[list[int]] = []
    expected = start
    for row in rows:
        if row["sequence"] > expected:
            gaps.append([expected, row["sequence"] - 1])
        expected = row["sequence"] + 1
    return gaps


def _db_now() -> dt.datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def _older_transactions_open(seen_at: dt.datetime) -> int:
    """Client sessions of this database, other than ours, inside a transaction begun at or before seen_at.

    Any transaction still holding a sequence below one that was visible at seen_at began before then.
    (The role needs to see other sessions' xact_start: the same role, or pg_read_all_stats.)"""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "AND xact_start IS NOT NULL AND xact_start <= %s",
            [seen_at],
        )
        return int(cursor.fetchone()[0])


def _gaps_settled(seen_at: dt.datetime, wait_seconds: float) -> bool:
    if connection.vendor != "postgresql":
        # SQLite has one writer at a time and no gaps from rollbacks: what is missing stays missing.
        return True
    deadline = time.monotonic() + wait_seconds
    while True:
        if _older_transactions_open(seen_at) == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _read_batch(start: int, *, batch_size: int, settle_seconds: float, gap_wait_seconds: float) -> _Batch | None:
    rows = list(Event.objects.filter(sequence__gte=start).order_by("sequence").values(*EVENT_FIELDS)[:batch_size])
    if not rows:
        return None
    seen_at = _db_now() if connection.vendor == "postgresql" else timezone.now()
    cutoff = timezone.now() - dt.timedelta(seconds=settle_seconds)
    settled = [row["sequence"] for row in rows if row["timestamp"] <= cutoff]
    if not settled:
        return None
    watermark = max(settled)
    rows = [row for row in rows if row["sequence"] <= watermark]
    if not _gaps_of(start, rows):
        return _Batch(rows, [])
    if _gaps_settled(seen_at, gap_wait_seconds):
        # Whatever committed in the meantime is visible now; what is still missing never will be.
        rows = list(
            Event.objects.filter(sequence__gte=start, sequence__lte=watermark)
            .order_by("sequence")
            .values(*EVENT_FIELDS)
        )
        return _Batch(rows, _gaps_of(start, rows))
    # A transaction that may hold a missing sequence is still open: seal only what lies before it.
    first_gap = _gaps_of(start, rows)[0][0]
    logger.info("audit seal waits: sequence %s may still commit", first_gap)
    rows = [row for row in rows if row["sequence"] < first_gap]
    return _Batch(rows, []) if rows else None


def _lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite transactions are IMMEDIATE: one sealer at a time already
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def seal_next(
    *, batch_size: int | None = None, settle_seconds: float | None = None, gap_wait_seconds: float | None = None
) -> Seal | None:
    """Seal the next batch of committed events, or return None (nothing settled, or another sealer runs)."""
    batch_size = batch_size or settings.AUDIT_SEAL_BATCH
    settle = settings.AUDIT_SEAL_SETTLE_SECONDS if settle_seconds is None else settle_seconds
    gap_wait = settings.AUDIT_SEAL_GAP_WAIT_SECONDS if gap_wait_seconds is None else gap_wait_seconds
    with transaction.atomic():
        if not _lock():
            return None
        last = Seal.objects.order_by("-number").first()
        if last is not None:
            start, previous, number = last.last_sequence + 1, last.seal_hash, last.number + 1
        else:
            start = Event.objects.aggregate(first=Min("sequence"))["first"]
            if start is None:
                return None
            previous, number = GENESIS, 1
        batch = _read_batch(start, batch_size=batch_size, settle_seconds=settle, gap_wait_seconds=gap_wait)
        if batch is None:
            return None
        chain = previous
        hashes = []
        for row in batch.rows:
            digest = content_hash(canonical_content(row))
            chain = chain_step(chain, digest)
            hashes.append(
                EventHash(sequence=row["sequence"], event_id=row["event_id"], content_hash=digest, chain_hash=chain)
            )
        EventHash.objects.bulk_create(hashes)
        seal = Seal(
            number=number,
            first_sequence=start,
            last_sequence=batch.rows[-1]["sequence"],
            event_count=len(batch.rows),
            gaps=batch.gaps,
            batch_hash=chain,
            previous_hash=previous,
            sealed_at=timezone.now(),
        )
        seal.seal_hash = seal_hash_of(seal_fields(seal))
        seal.key_id = key_id()
        seal.signature = signature_of(seal.seal_hash)
        seal.save(force_insert=True)
    if batch.gaps:
        logger.info("audit seal %s records permanent gaps %s", seal.number, batch.gaps)
    return seal


def seal_pending(*, max_batches: int = 1000, **options: Any) -> list[Seal]:
    """Seal every settled event (batch after batch) and return the new seals."""
    seals: list[Seal] = []
    for _ in range(max_batches):
        seal = seal_next(**options)
        if seal is None:
            break
        seals.append(seal)
    return seals


# --- verification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    sequence: int
    kind: str  # changed | deleted | inserted | reordered | seal
    detail: str

    def __str__(self) -> str:
        return f"event #{self.sequence} {self.kind}: {self.detail}"


@dataclass
class Verification:
    seals: int = 0
    events: int = 0
    unsealed: int = 0
    head_number: int | None = None
    head_hash: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.sequence) if self.problems else None

    def summary(self) -> str:
        if self.ok:
            head = f"; head seal {self.head_number} {self.head_hash}" if self.head_number else ""
            return (
                f"OK: {self.events} events in {self.seals} seals verified; "
                f"{self.unsealed} newer events not sealed yet{head}"
            )
        first = self.first
        return f"FAILED: first bad event #{first.sequence} ({first.kind}): {first.detail}"

    def as_payload(self) -> dict[str, Any]:
        first = self.first
        return {
            "ok": self.ok,
            "first_bad_sequence": first.sequence if first else None,
            "kind": first.kind if first else None,
            "detail": first.detail if first else None,
            "problems": len(self.problems),
            "seals": self.seals,
            "events_verified": self.events,
            "unsealed": self.unsealed,
            "head_seal": self.head_number,
            "head_hash": self.head_hash,
        }


class _Peek:
    """An iterator of rows by sequence that can hand out every row below a bound."""

    def __init__(self, rows: Iterator[Any], key: Any) -> None:
        self._rows, self._key, self._next = rows, key, None
        self._advance()

    def _advance(self) -> None:
        self._next = next(self._rows, None)

    def upto(self, bound: int) -> list[Any]:
        taken = []
        while self._next is not None and self._key(self._next) <= bound:
            taken.append(self._next)
            self._advance()
        return taken


MAX_PROBLEMS = 100


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
    if seal.key_id != key_id() or not hmac.compare_digest(signature_of(seal.seal_hash), seal.signature):
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


def verify() -> Verification:
    """Check every seal and every sealed event; count the events newer than the last seal."""
    report = Verification()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                # One snapshot for seals, hashes and events, whatever is appended meanwhile.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        head = Seal.objects.order_by("-number").first()
        bound = head.last_sequence if head else 0
        events = _Peek(event_rows(Event.objects.filter(sequence__lte=bound)), key=lambda r: r["sequence"])
        hashes = _Peek(
            EventHash.objects.filter(sequence__lte=bound).order_by("sequence").iterator(chunk_size=2000),
            key=lambda h: h.sequence,
        )
        previous: Seal | None = None
        for seal in Seal.objects.order_by("number").iterator(chunk_size=500):
            report.seals += 1
            _check_seal(seal, previous, report)
            for row in events.upto(seal.first_sequence - 1):
                report.problems.append(Problem(row["sequence"], "inserted", "event outside every seal's range"))
            for record in hashes.upto(seal.first_sequence - 1):
                report.problems.append(Problem(record.sequence, "seal", "hash record outside every seal's range"))
            _check_batch(
                seal,
                seal.previous_hash,
                hashes.upto(seal.last_sequence),
                events.upto(seal.last_sequence),
                report,
            )
            previous = seal
            if len(report.problems) >= MAX_PROBLEMS:
                break
        report.unsealed = Event.objects.filter(sequence__gt=bound).count()
        if head is not None:
            report.head_number, report.head_hash = head.number, head.seal_hash
    return report


def verify_and_record(*, seal_first: bool = True) -> Verification:
    """Seal what has settled, verify, and record the outcome as an AUDIT_VERIFIED event."""
    from audit.services import event_record

    if seal_first:
        seal_pending()
    report = verify()
    with transaction.atomic():
        event_record(event_type=EventType.AUDIT_VERIFIED, payload=report.as_payload())
    log = logger.info if report.ok else logger.error
    log("audit verification: %s", report.summary())
    return report
