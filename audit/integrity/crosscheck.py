"""The database against its witness: a missing tail, a replaced seal, a gap or seal the witness does not know."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from audit.integrity.hashing import expected_sequences
from audit.integrity.report import Verification
from audit.integrity.witness import WitnessUnavailable, readable_witness
from audit.models import Event, Seal

# A seal is witnessed right after it commits; one younger than this may still be on its way.
GRACE = dt.timedelta(seconds=120)


def _first_missing_event(entry: dict[str, Any]) -> int | None:
    first, last = int(entry["first_sequence"]), int(entry["last_sequence"])
    present = set(Event.objects.filter(sequence__gte=first, sequence__lte=last).values_list("sequence", flat=True))
    return next((seq for seq in expected_sequences(first, last, entry["gaps"]) if seq not in present), None)


def _missing(report: Verification, entry: dict[str, Any]) -> None:
    number = entry["number"]
    missing = _first_missing_event(entry)
    if missing is not None:
        report.add(missing, "deleted", f"event #{missing}, sealed in seal {number} (witnessed), is gone with its seal")
    else:
        report.add(
            int(entry["first_sequence"]), "seal", f"seal {number} is in the witness but deleted from the database"
        )


def _replaced(report: Verification, entry: dict[str, Any], seal: Seal) -> None:
    """A seal whose hash the witness does not know: named at the first sequence the two disagree on."""
    number = entry["number"]
    at = min(int(entry["first_sequence"]), seal.first_sequence)
    pinned = {(int(a), int(b)) for a, b in entry["gaps"]}
    for a, b in sorted((int(a), int(b)) for a, b in seal.gaps):
        if (a, b) not in pinned:
            report.add(a, "replaced", f"gap #{a}-#{b} of seal {number} is not pinned by its witness entry")
    witnessed = set(expected_sequences(int(entry["first_sequence"]), int(entry["last_sequence"]), entry["gaps"]))
    sealed = set(expected_sequences(seal.first_sequence, seal.last_sequence, seal.gaps))
    differ = sorted(witnessed ^ sealed)
    if differ:
        at = differ[0]
        how = "was sealed as witnessed, not as now" if at in witnessed else "is sealed now, not as witnessed"
        report.add(at, "replaced", f"event #{at} {how} (seal {number})")
    report.add(
        at,
        "replaced",
        f"seal {number} differs from the witness (hash {seal.seal_hash[:12]}, witnessed {entry['seal_hash'][:12]})",
    )


def check_witness(report: Verification, *, trail_id: str | None, seals: dict[int, Seal]) -> None:
    """Compare every seal with the witness's entries (seal-level only: cheap at millions of events)."""
    witness = readable_witness()
    if witness is None:
        report.witness = "none readable (AUDIT_WITNESS names no file witness): the trail is not witnessed"
        return
    if trail_id is None:
        report.witness = f"{witness.name}: no trail identity yet"
        return
    try:
        entries = witness.read(trail_id)
    except WitnessUnavailable as exc:
        report.add(0, "witness", str(exc))
        return
    by_number: dict[int, dict[str, Any]] = {}
    for entry in entries:
        number, at = entry["number"], int(entry.get("first_sequence", 0))
        if entry.get("trail") != trail_id:
            report.add(
                at, "witness", f"witness entry for seal {number} names trail {entry.get('trail')}, not {trail_id}"
            )
            continue
        known = by_number.setdefault(number, entry)
        if known["seal_hash"] != entry["seal_hash"]:
            report.add(at, "witness", f"the witness holds two different hashes for seal {number}")
    for number, entry in sorted(by_number.items()):
        seal = seals.get(number)
        if seal is None:
            # Sealed and witnessed after verification's snapshot was taken? Then it exists now.
            seal = Seal.objects.filter(number=number).first() if number > max(seals, default=0) else None
            if seal is None:
                _missing(report, entry)
                continue
        if seal.seal_hash != entry["seal_hash"]:
            _replaced(report, entry, seal)
    now = timezone.now()
    for number, seal in sorted(seals.items()):
        if number in by_number:
            continue
        if number < max(by_number, default=0) or now - seal.sealed_at > GRACE:
            gaps = f" and its gaps {seal.gaps} are pinned by nothing" if seal.gaps else ""
            report.add(seal.first_sequence, "witness", f"seal {number} is not in the witness{gaps}")
        else:
            report.unwitnessed += 1
    head = max(by_number, default=0)
    report.witness = f"{witness.name} holds {len(by_number)} seals (newest {head})" + (
        f", {report.unwitnessed} newest on their way" if report.unwitnessed else ""
    )
