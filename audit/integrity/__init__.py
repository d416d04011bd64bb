"""Tamper evidence for the event store: canonical hashes, sealed and chained batches, an outside witness.

Events are appended without any extra lock. After commit a sealer (beat task `audit.seal`, and the
`verify_audit` / `export_audit` commands) takes, under its own advisory lock, the events in sequence
order up to a safe watermark and writes one EventHash row per event and one Seal per batch:

    content_hash = sha256(canonical content of the event)
    chain_hash   = sha256(previous chain_hash || content_hash)   (starting from the previous seal's hash)
    batch_hash   = chain_hash of the batch's last event
    seal_hash    = sha256(canonical JSON of the seal's fields, previous_hash and gaps included)
    signature    = HMAC-SHA256(seal key, seal_hash)           (the key lives outside the database)

As each seal commits, its number, range, gaps and hash go to the witness (outside the database, keyed by
the trail's identity), so a superuser who cuts the tail, or deletes events and lets them be re-sealed as
a "gap", is caught without anything kept by hand. Modules: hashing (canonical form), batches (what may be
sealed), sealing, witness, crosscheck (database against witness), verification, report, alarm.
"""

from audit.integrity.alarm import integrity_alarm
from audit.integrity.batches import SEAL_LOCK_KEY
from audit.integrity.hashing import (
    EVENT_FIELDS,
    GENESIS,
    canonical_content,
    chain_step,
    content_hash,
    event_rows,
    expected_sequences,
    key_id,
    seal_fields,
    seal_hash_of,
    signature_of,
    timestamp_text,
)
from audit.integrity.report import Problem, TrailBroken, Verification
from audit.integrity.sealing import seal_next, seal_pending, trail_identity
from audit.integrity.verification import verify, verify_and_record
from audit.integrity.witness import WitnessUnavailable, readable_witness, witnesses

__all__ = [
    "EVENT_FIELDS",
    "GENESIS",
    "SEAL_LOCK_KEY",
    "Problem",
    "TrailBroken",
    "Verification",
    "WitnessUnavailable",
    "canonical_content",
    "chain_step",
    "content_hash",
    "event_rows",
    "expected_sequences",
    "integrity_alarm",
    "key_id",
    "readable_witness",
    "seal_fields",
    "seal_hash_of",
    "seal_next",
    "seal_pending",
    "signature_of",
    "timestamp_text",
    "trail_identity",
    "verify",
    "verify_and_record",
    "witnesses",
]
