"""Sealing: chain and sign the next batch of committed events, after checking the trail and its witness.

Before each seal, under the sealer's advisory lock, the trail must be whole: its identity row present,
no hash record beyond the last seal (a deleted seal), and the witness's newest seal present in the
database with the same hash. The witness may lag (a write that failed after commit): the missing
entries are written first, from seals that chain and carry the seal key's signature. Anything else
stops sealing loudly (an error line, an AUDIT_SEALING_STOPPED event, the integrity alarm the health
check reports) instead of re-sealing a shortened tail.
"""

from __future__ import annotations

import logging
import uuid
from functools import partial
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Min
from django.utils import timezone

from audit.integrity.alarm import alarm_raise
from audit.integrity.batches import read_batch, seal_lock
from audit.integrity.hashing import (
    GENESIS,
    canonical_content,
    chain_step,
    content_hash,
    key_id,
    seal_fields,
    seal_hash_of,
    signature_holds,
    signature_of,
)
from audit.integrity.report import Problem, TrailBroken
from audit.integrity.witness import WitnessUnavailable, readable_witness, witness_after_commit, witness_write
from audit.models import Event, EventHash, EventType, Seal, Trail
from audit.services import event_record
from core import sql

logger = logging.getLogger("itirp.audit")


def trail_identity(*, create: bool = False) -> str | None:
    """This database's trail id. A trail without seals may be given one (after a test flush); a sealed
    trail without one has lost it, and that is an error, never a fresh start."""
    row = Trail.objects.first()
    if row is not None:
        return str(row.trail_id)
    first = Seal.objects.order_by("number").first()
    if first is not None:
        raise TrailBroken(Problem(first.first_sequence, "trail", "the trail identity row is missing (deleted?)"))
    if not create:
        return None
    row, _ = Trail.objects.get_or_create(id=1)
    logger.warning("audit trail identity %s created (a database without one and without seals)", row.trail_id)
    return str(row.trail_id)


def _check_tail(head: Seal | None) -> None:
    """Hash records are written with their seal: one beyond the last seal means that seal was deleted."""
    stray = EventHash.objects.filter(sequence__gt=head.last_sequence if head else -(2**63)).order_by("sequence")
    first = stray.values_list("sequence", flat=True).first()
    if first is not None:
        last = f"seal {head.number} (through #{head.last_sequence})" if head else "no seal"
        raise TrailBroken(Problem(first, "seal", f"hash records from #{first} lie beyond the last seal, {last}"))


def _reconcile_witness(trail_id: str, head: Seal | None) -> None:
    """The witness's newest seal must be the database's, or older; what the witness lacks is written now."""
    witness = readable_witness()
    if witness is None:
        return
    witnessed = witness.head(trail_id)
    if witnessed is not None:
        number, at = witnessed["number"], int(witnessed.get("first_sequence", 0))
        if witnessed.get("trail") != trail_id:
            raise TrailBroken(
                Problem(at, "witness", f"the witness names trail {witnessed.get('trail')}, not {trail_id}")
            )
        if head is None or number > head.number:
            through = f"seal {head.number} (through #{head.last_sequence})" if head else "no seal"
            first = head.last_sequence + 1 if head else at
            raise TrailBroken(
                Problem(first, "deleted", f"the witness holds seal {number} but the database ends at {through}")
            )
        kept = Seal.objects.filter(number=number).values_list("seal_hash", flat=True).first()
        if kept != witnessed["seal_hash"]:
            raise TrailBroken(Problem(at, "replaced", f"seal {number} differs from the witness (replaced)"))
    previous = witnessed["seal_hash"] if witnessed else GENESIS
    behind = list(Seal.objects.filter(number__gt=witnessed["number"] if witnessed else 0).order_by("number"))
    for seal in behind:
        if seal.previous_hash != previous or not signature_holds(seal):
            raise TrailBroken(Problem(seal.first_sequence, "seal", f"unwitnessed seal {seal.number} does not hold"))
        previous = seal.seal_hash
    if behind:
        witness_write(behind, trail_id)
        logger.warning(
            "audit witness was %s seal(s) behind: written now (through seal %s)", len(behind), behind[-1].number
        )


class _Hash(NamedTuple):
    """An EventHash row to insert. Not a model instance: Model.__init__ for each of a seal's events was 4 % of
    the worker's CPU under the order flow (py-spy), for four values that go to the database as arrays."""

    sequence: int
    event_id: uuid.UUID
    content_hash: str
    chain_hash: str


def _hashes_insert(hashes: list[_Hash]) -> None:
    """Insert a batch's hash records. PostgreSQL: one statement of four arrays (UNNEST), its text the same for
    every batch, instead of a prepared value per column per row (a seal covers up to AUDIT_SEAL_BATCH events,
    and sealing runs beside the order flow); elsewhere the ORM's bulk_create."""
    if connection.vendor != "postgresql":
        EventHash.objects.bulk_create([EventHash(**h._asdict()) for h in hashes])
        return
    qn = connection.ops.quote_name
    columns = ", ".join(qn(name) for name in ("sequence", "event_id", "content_hash", "chain_hash"))
    # through core.sql: its arrays are one literal each (psycopg's ListDumper on Django's cursor was 15 % of a seal)
    sql.run(
        [
            (
                f"INSERT INTO {qn(EventHash._meta.db_table)} ({columns}) "  # noqa: S608 - our own names
                "SELECT * FROM UNNEST(%s::bigint[], %s::uuid[], %s::varchar[], %s::varchar[])",
                [
                    [h.sequence for h in hashes],
                    [h.event_id for h in hashes],
                    [h.content_hash for h in hashes],
                    [h.chain_hash for h in hashes],
                ],
            )
        ]
    )


def seal_next(
    *, batch_size: int | None = None, settle_seconds: float | None = None, gap_wait_seconds: float | None = None
) -> Seal | None:
    """Seal the next batch of committed events, or return None (nothing settled, or another sealer runs).
    Raises TrailBroken or WitnessUnavailable when the trail must not be sealed further."""
    batch_size = batch_size or settings.AUDIT_SEAL_BATCH
    settle = settings.AUDIT_SEAL_SETTLE_SECONDS if settle_seconds is None else settle_seconds
    gap_wait = settings.AUDIT_SEAL_GAP_WAIT_SECONDS if gap_wait_seconds is None else gap_wait_seconds
    with transaction.atomic():
        if not seal_lock():
            return None
        trail_id = trail_identity(create=True)
        assert trail_id is not None
        last = Seal.objects.order_by("-number").first()
        _check_tail(last)
        _reconcile_witness(trail_id, last)
        if last is not None:
            start, previous, number = last.last_sequence + 1, last.seal_hash, last.number + 1
        else:
            start = Event.objects.aggregate(first=Min("sequence"))["first"]
            if start is None:
                return None
            previous, number = GENESIS, 1
        batch = read_batch(start, batch_size=batch_size, settle_seconds=settle, gap_wait_seconds=gap_wait)
        if batch is None:
            return None
        chain = previous
        hashes = []
        for row in batch.rows:
            digest = content_hash(canonical_content(row))
            chain = chain_step(chain, digest)
            hashes.append(_Hash(row["sequence"], row["event_id"], digest, chain))
        _hashes_insert(hashes)
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
        # Witnessed as the seal commits; a failed write is made good by the next run's reconciliation.
        transaction.on_commit(partial(witness_after_commit, seal, trail_id), robust=True)
    if batch.gaps:
        logger.info("audit seal %s records permanent gaps %s (pinned by its witness entry)", seal.number, batch.gaps)
    return seal


def sealing_stopped(problem: Problem) -> None:
    """Stop loudly: an error line, the integrity alarm (health), and once per cause an event in the trail."""
    summary = f"audit sealing stopped at #{problem.sequence} ({problem.kind}): {problem.detail}"
    logger.error(summary)
    if not alarm_raise(summary=summary, source="seal"):
        return
    try:
        with transaction.atomic():
            event_record(
                event_type=EventType.AUDIT_SEALING_STOPPED,
                payload={"first_bad_sequence": problem.sequence, "kind": problem.kind, "detail": problem.detail},
            )
    except Exception:  # noqa: BLE001 - a database that refuses the event must not hide the stop itself
        logger.exception("the AUDIT_SEALING_STOPPED event could not be recorded")


def seal_pending(*, max_batches: int = 1000, **options: Any) -> list[Seal]:
    """Seal every event settled when the run began (batch after batch) and return the new seals; a trail
    that must not be sealed further stops the run loudly (sealing_stopped) and returns what was sealed before.

    A batch smaller than the batch size took everything settled at its read: the run ends there, and the
    events that settle meanwhile wait for the next run. Going on sealed the trickle as it settled, a seal of
    a few events every few milliseconds while orders flow, each with its lock, checks and witness write."""
    batch_size = options.get("batch_size") or settings.AUDIT_SEAL_BATCH
    seals: list[Seal] = []
    try:
        for _ in range(max_batches):
            seal = seal_next(**options)
            if seal is None:
                break
            seals.append(seal)
            if seal.event_count < batch_size:
                break
    except TrailBroken as exc:
        sealing_stopped(exc.problem)
    except WitnessUnavailable as exc:
        sealing_stopped(Problem(seals[-1].last_sequence + 1 if seals else 0, "witness", str(exc)))
    except IntegrityError as exc:
        # A duplicate hash record or seal: the tables disagree in a way the checks above did not foresee.
        sealing_stopped(Problem(0, "seal", f"the seal could not be written: {str(exc).splitlines()[0]}"))
    return seals
