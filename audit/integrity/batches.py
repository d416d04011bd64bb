"""Which committed events the next seal may take: up to a settled watermark; a missing sequence is a deletion.

On PostgreSQL events are numbered by a counter row that each writing transaction holds until it commits
(audit/migrations/0006): from the counter's `gapless_from` on, committed sequences are contiguous and
become visible in order, so a missing one was deleted. The sealer refuses to seal past it (TrailBroken):
a deletion is never laundered into a gap.

Before `gapless_from` (events of a database migrated from the sequence object) numbers were handed out at
INSERT and became visible at COMMIT, and a rollback left a gap. There a missing sequence below the
watermark is recorded as a permanent gap only once no transaction that could hold it is still open (no
client session of this database whose transaction started before the higher sequence was seen); until
then the batch stops before it. The gaps a seal records are pinned by its witness entry.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Max
from django.utils import timezone

from audit.integrity.hashing import EVENT_FIELDS
from audit.integrity.report import Problem, TrailBroken
from audit.models import Event

logger = logging.getLogger("itirp.audit")
# Any 64-bit number unique to this lock; pg_advisory locks are per database.
SEAL_LOCK_KEY = 0x17_1E_A0_D1_5E_A1


@dataclass
class Batch:
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


def gapless_from() -> int | None:
    """The first sequence numbered by the gapless counter (PostgreSQL), or None where there is none."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('audit_sequence_counter') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT gapless_from FROM audit_sequence_counter WHERE id = 1")
        row = cursor.fetchone()
    return int(row[0]) if row else None


def deleted_in(gaps: list[list[int]], since: int | None) -> list[int] | None:
    """The first gap that numbering makes impossible but by deletion (from `since` on), or None."""
    if since is None:
        return None
    return next(([max(a, since), b] for a, b in gaps if b >= since), None)


def unsealed_deletion(bound: int | None) -> Problem | None:
    """A deletion among the events not sealed yet (after sequence `bound`, the head seal's last; None: no
    seal yet), which no seal or witness can show: a gap in them, or a tail cut below the counter's last number.
    The counter is read first: a transaction committing between the two reads only makes the events newer."""
    since = gapless_from()
    if since is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT last FROM audit_sequence_counter WHERE id = 1")
        numbered = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT previous + 1 FROM (SELECT sequence, lag(sequence) OVER (ORDER BY sequence) AS previous"
            " FROM audit_event WHERE sequence > %s) t WHERE sequence - previous > 1 AND previous + 1 >= %s"
            " ORDER BY sequence LIMIT 1",
            [bound or 0, since],
        )
        gap = cursor.fetchone()
        cursor.execute("SELECT MIN(sequence), MAX(sequence) FROM audit_event WHERE sequence > %s", [bound or 0])
        first, last = cursor.fetchone()
    if bound is not None and first is not None and first > bound + 1 and bound + 1 >= since:
        return Problem(bound + 1, "deleted", f"events #{bound + 1}-#{first - 1} after the last seal are missing")
    if gap is not None:
        return Problem(int(gap[0]), "deleted", f"event #{gap[0]} is missing from the unsealed events")
    top = last if last is not None else bound
    if top is not None and numbered > top and top + 1 >= since:
        return Problem(top + 1, "deleted", f"events #{top + 1}-#{numbered} were numbered, and are gone")
    return None


def _refuse_deleted(gaps: list[list[int]]) -> None:
    deleted = deleted_in(gaps, gapless_from())
    if deleted is not None:
        a, b = deleted
        span = f"#{a}" if a == b else f"#{a}-#{b}"
        raise TrailBroken(
            Problem(a, "deleted", f"events {span} are missing: sequences are gapless, so they were deleted")
        )


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


def _watermark(start: int, *, batch_size: int, cutoff: dt.datetime) -> int | None:
    """The highest sequence among the first `batch_size` events from `start` whose time is at or before
    `cutoff` (settled), or None: found by the database, so that no event is read whole before it is sealed.
    Under load most of the events after the last seal are not settled yet; reading them all on every seal
    (and a seal is tried again as soon as the last one was small) cost the worker most of its sealing time."""
    head = Event.objects.filter(sequence__gte=start).order_by("sequence")
    last = head.values_list("sequence", flat=True)[batch_size - 1 : batch_size].first()
    settled = head.filter(timestamp__lte=cutoff)
    if last is not None:
        settled = settled.filter(sequence__lte=last)
    return settled.aggregate(watermark=Max("sequence"))["watermark"]


def read_batch(start: int, *, batch_size: int, settle_seconds: float, gap_wait_seconds: float) -> Batch | None:
    """The next batch: the events from `start` up to the settled watermark (the highest sequence, among the
    next `batch_size`, of an event older than `settle_seconds`), with the gaps below it recorded or refused
    (module docstring); None when nothing is settled yet."""
    cutoff = timezone.now() - dt.timedelta(seconds=settle_seconds)
    watermark = _watermark(start, batch_size=batch_size, cutoff=cutoff)
    if watermark is None:
        return None
    rows = list(
        Event.objects.filter(sequence__gte=start, sequence__lte=watermark).order_by("sequence").values(*EVENT_FIELDS)
    )
    seen_at = _db_now() if connection.vendor == "postgresql" else timezone.now()
    if not rows:  # deleted since the watermark was read: the next seal's read finds the gap
        return None
    if not _gaps_of(start, rows):
        return Batch(rows, [])
    _refuse_deleted(_gaps_of(start, rows))
    if _gaps_settled(seen_at, gap_wait_seconds):
        # Whatever committed in the meantime is visible now; what is still missing never will be.
        rows = list(
            Event.objects.filter(sequence__gte=start, sequence__lte=watermark)
            .order_by("sequence")
            .values(*EVENT_FIELDS)
        )
        return Batch(rows, _gaps_of(start, rows))
    # A transaction that may hold a missing sequence is still open: seal only what lies before it.
    first_gap = _gaps_of(start, rows)[0][0]
    logger.info("audit seal waits: sequence %s may still commit", first_gap)
    rows = [row for row in rows if row["sequence"] < first_gap]
    return Batch(rows, []) if rows else None


def seal_lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite transactions are IMMEDIATE: one sealer at a time already
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
        return bool(cursor.fetchone()[0])
