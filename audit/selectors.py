"""Audit read queries: filtered event pages and trails in causal (sequence) order."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from audit.models import Event


def events_filtered(
    *,
    event_type: str | None = None,
    user: str | None = None,
    order_id: uuid.UUID | None = None,
    symbol: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    correlation_id: uuid.UUID | None = None,
) -> QuerySet[Event]:
    qs = Event.objects.all()
    if event_type:
        qs = qs.filter(event_type=event_type)
    if user:
        qs = qs.filter(actor_username=user)
    if order_id:
        qs = qs.filter(order_id=order_id)
    if correlation_id:
        qs = qs.filter(correlation_id=correlation_id)
    if symbol:
        qs = qs.filter(symbol=symbol.upper())
    if since:
        qs = qs.filter(timestamp__gte=since)
    if until:
        qs = qs.filter(timestamp__lt=until)
    return qs


def events_page(*, limit: int, offset: int = 0, **filters: Any) -> tuple[list[Event], int]:
    """The newest `limit` matching events (after skipping `offset` newer ones), returned oldest first."""
    qs = events_filtered(**filters)
    total = qs.count()
    newest = list(qs.order_by("-sequence")[offset : offset + limit])
    newest.reverse()
    return newest, total


def trail_by_correlation(correlation_id: uuid.UUID) -> list[Event]:
    return list(Event.objects.filter(correlation_id=correlation_id).order_by("sequence"))


def trail_by_order(order_id: uuid.UUID) -> list[Event]:
    return list(Event.objects.filter(order_id=order_id).order_by("sequence"))
