"""Celery tasks of the audit app: seal settled events, verify the trail (incremental and full; beat runs all)."""

from __future__ import annotations

from celery import shared_task

from audit import integrity


@shared_task(name="audit.seal", acks_late=True, ignore_result=True)
def audit_seal() -> int:
    return len(integrity.seal_pending())


# Verification reads the trail: allowed longer than the default task limit, still well inside the
# broker's visibility timeout so it is not redelivered while it runs.
@shared_task(name="audit.verify", acks_late=True, ignore_result=True, soft_time_limit=230, time_limit=240)
def audit_verify() -> bool:
    return integrity.verify_and_record().ok


# The daily full re-hash reads every event (84 s per million events measured on a busy 2-core host, so
# ~15 min at 10M): longer than the broker's visibility timeout, so it is acknowledged on receipt (never
# redelivered while it runs; a run lost with its worker waits for the next day or `verify_audit --full`).
@shared_task(name="audit.verify_full", acks_late=False, ignore_result=True, soft_time_limit=3500, time_limit=3600)
def audit_verify_full() -> bool:
    return integrity.verify_and_record(full=True).ok
