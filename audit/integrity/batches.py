"""Which committed events the next seal may take: up to a settled watermark, stopping at a gap still in flight.

Sequence values are handed out at INSERT but become visible at COMMIT, so a lower sequence can appear
after a higher one was seen. A missing sequence below the watermark is recorded as a permanent gap
only once no transaction that could hold it is still open (PostgreSQL: no client session of this
database whose transaction started before the higher sequence was seen); until then the batch stops
before it. The gaps a seal records are pinned by its witness entry (audit.integrity.witness).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from audit.integrity.hashing import EVENT_FIELDS
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


def read_batch(start: int, *, batch_size: int, settle_seconds: float, gap_wait_seconds: float) -> Batch | None:
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
        return Batch(rows, [])
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
