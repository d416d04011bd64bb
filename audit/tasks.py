"""Celery tasks of the audit app: seal settled events, and verify the whole trail (beat schedules both)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="audit.seal", acks_late=True, ignore_result=True)
def audit_seal() -> int:
    from audit import integrity

    return len(integrity.seal_pending())


# Verification reads the whole trail: allowed longer than the default task limit, still well inside the
# broker's visibility timeout so it is not redelivered while it runs.
@shared_task(name="audit.verify", acks_late=True, ignore_result=True, soft_time_limit=230, time_limit=240)
def audit_verify() -> bool:
    from audit import integrity

    return integrity.verify_and_record().ok
