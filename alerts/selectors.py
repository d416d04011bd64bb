"""Alert reads: the list for GET /alerts and the banner, and the rows a stream catches up with."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from alerts.models import Alert

PAGE = 200


def alerts_list(*, since: dt.datetime | None = None, unacknowledged: bool = False) -> list[Alert]:
    rows: QuerySet[Alert] = Alert.objects.select_related("acknowledged_by")
    if since is not None:
        rows = rows.filter(timestamp__gt=since)
    if unacknowledged:
        rows = rows.filter(acknowledged_at__isnull=True)
    return list(rows.order_by("-id")[:PAGE])


def alerts_after(last_id: int) -> list[Alert]:
    """Alerts a stream has not sent yet (oldest first): after the Last-Event-ID it was given."""
    return list(Alert.objects.select_related("acknowledged_by").filter(id__gt=last_id).order_by("id")[:PAGE])


def last_id() -> int:
    row = Alert.objects.order_by("-id").values_list("id", flat=True).first()
    return row or 0
