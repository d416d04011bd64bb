"""Celery tasks of the approvals app: pending changes past FOUR_EYES_EXPIRY_SECONDS closed as EXPIRED."""

from __future__ import annotations

from celery import shared_task

from approvals.services import changes_expire


@shared_task(name="approvals.expire", acks_late=True, ignore_result=True)
def expire() -> int:
    return changes_expire()
