"""Celery tasks of the analytics app: the scheduled VaR-limit run (CELERY_BEAT_SCHEDULE, every minute by default)."""

from __future__ import annotations

from celery import shared_task

from analytics.services import var_limits_check


@shared_task(name="analytics.var_limits_check", acks_late=True, ignore_result=True, time_limit=55, soft_time_limit=50)
def var_limits_check_task() -> None:
    var_limits_check()
