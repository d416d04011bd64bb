"""Celery tasks of the market app: thin wrappers that call the history module."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from market import history


@shared_task(name="market.prune_bars", acks_late=True, ignore_result=True, time_limit=600)
def bars_prune() -> int:
    """Beat, daily: delete 1-minute bars older than MARKET_BAR_RETENTION_DAYS (daily bars are kept)."""
    return history.minute_bars_prune(older_than_days=settings.MARKET_BAR_RETENTION_DAYS)
