"""Celery tasks of the risk app: the periodic exposure snapshot behind the dashboard's chart of the day."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from risk.models import ExposureSnapshot


def exposure_snapshot_take(*, now: dt.datetime | None = None) -> ExposureSnapshot:
    """Measure firm exposure now (the same figures as GET /risk/metrics) and keep it; drop snapshots past
    the retention. A measurement, not a state change of the platform: it has no audit event."""
    from risk.selectors import risk_metrics

    now = now or timezone.now()
    metrics = risk_metrics()
    snapshot = ExposureSnapshot.objects.create(
        taken_at=now,
        net_exposure=metrics["net_exposure"],
        gross_exposure=metrics["gross_exposure"],
        daily_volume=metrics["daily_volume"],
        open_volume=metrics["open_orders_notional"],
        largest_position=metrics["largest_position"],
    )
    ExposureSnapshot.objects.filter(taken_at__lt=now - dt.timedelta(days=settings.EXPOSURE_SNAPSHOT_KEEP_DAYS)).delete()
    return snapshot


@shared_task(name="risk.exposure_snapshot", acks_late=True, ignore_result=True)
def exposure_snapshot() -> None:
    exposure_snapshot_take()
