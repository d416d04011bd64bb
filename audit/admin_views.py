"""Compliance pages: the trail of one request or order as a timeline, and the streamed export of a selection."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Max, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.utils import timezone

from audit import selectors
from audit.models import Event, EventType
from audit.services import event_record
from orders.models import Order

TRAIL_MAX_EVENTS = 1000
EXPORT_COLUMNS = [
    "sequence",
    "event_id",
    "timestamp",
    "event_type",
    "actor_username",
    "actor_id",
    "address",
    "correlation_id",
    "causation_id",
    "order_id",
    "symbol",
    "payload",
]
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def _uuid(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID((raw or "").strip())
    except ValueError:
        return None


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"+{seconds * 1000:.1f} ms"
    if seconds < 120:
        return f"+{seconds:.2f} s"
    return f"+{seconds / 60:.1f} min"


def trail_view(request: HttpRequest, *, model_admin: Any) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    order_id = _uuid(request.GET.get("order_id"))
    correlation_id = _uuid(request.GET.get("correlation_id"))
    events: list[Event] = []
    if order_id:
        events = selectors.trail_by_order(order_id)[:TRAIL_MAX_EVENTS]
        subject = f"order {order_id}"
    elif correlation_id:
        events = selectors.trail_by_correlation(correlation_id)[:TRAIL_MAX_EVENTS]
        subject = f"correlation id {correlation_id}"
    else:
        subject = ""
    steps = []
    previous = None
    for event in events:
        steps.append(
            {
                "event": event,
                "delta": _duration((event.timestamp - previous).total_seconds()) if previous else "start",
                "payload": json.dumps(event.payload, cls=DjangoJSONEncoder, indent=2, sort_keys=True),
            }
        )
        previous = event.timestamp
    order = None
    if order_id and request.user.has_perm("orders.view_order"):
        order = Order.objects.select_related("user").filter(pk=order_id).first()
    total = (events[-1].timestamp - events[0].timestamp).total_seconds() if len(events) > 1 else 0.0
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"Audit trail of {subject}" if subject else "Audit trail",
        "subject": subject,
        "steps": steps,
        "order": order,
        "total": _duration(total)[1:] if events else "",
        "bad_input": bool(request.GET.get("order_id") or request.GET.get("correlation_id")) and not subject,
        "truncated": len(events) >= TRAIL_MAX_EVENTS,
    }
    status = 404 if subject and not events else 200
    return TemplateResponse(request, "admin/audit/trail.html", context, status=status)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _safe_cell(value: Any) -> Any:
    # A text cell starting with = + - @ would be run as a formula by a spreadsheet (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    """One exported event; its payload stays the JSON text the database holds (no decode and re-encode)."""
    row = dict(zip(EXPORT_COLUMNS, values, strict=True))
    row["timestamp"] = row["timestamp"].isoformat()
    for key in ("event_id", "correlation_id", "causation_id", "order_id"):
        row[key] = str(row[key]) if row[key] else None
    return row


def _batched(lines: Iterator[str], size: int = 500) -> Iterator[str]:
    # One chunk per few hundred rows: a chunk per row would cost a server write each.
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def _csv_lines(rows: Iterator[tuple[Any, ...]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for values in rows:
        row = _row(values)
        yield writer.writerow([_safe_cell(row[c]) if row[c] is not None else "" for c in EXPORT_COLUMNS])


def _jsonl_lines(rows: Iterator[tuple[Any, ...]]) -> Iterator[str]:
    for values in rows:
        row = _row(values)
        payload = row.pop("payload")
        yield json.dumps(row, cls=DjangoJSONEncoder, sort_keys=True)[:-1] + f', "payload": {payload}}}\n'


def export_view(request: HttpRequest, *, model_admin: Any) -> HttpResponseBase:
    """Export exactly the selection the event list shows (same filters, search and dates), oldest first.

    The selection is fixed at the newest event existing now (the table is append-only, so it cannot
    change afterwards); its row count and the filter are recorded as AUDIT_EXPORTED before streaming."""
    if not (model_admin.has_view_permission(request) and request.user.has_perm("audit.export_audit")):
        raise PermissionDenied
    params = request.GET.copy()
    fmt = params.pop("format", ["csv"])[-1]
    if fmt not in EXPORT_FORMATS:
        return HttpResponseBadRequest("format must be csv or jsonl")
    request.GET = QueryDict(params.urlencode())  # the change list reads its filters from here (immutable, as ever)
    changelist = model_admin.get_changelist_instance(request)
    selection = changelist.get_queryset(request).order_by()
    upper = Event.objects.aggregate(top=Max("sequence"))["top"] or 0
    selection = selection.filter(sequence__lte=upper)
    with transaction.atomic():
        rows = selection.count()
        event_record(
            event_type=EventType.AUDIT_EXPORTED,
            actor=request.user,
            payload={
                "format": fmt,
                "filter": {key: params.getlist(key) for key in sorted(params)},
                "rows": rows,
                "up_to_sequence": upper,
            },
        )
    stream = (
        selection.order_by("sequence")
        .annotate(payload_text=Cast("payload", TextField()))
        .values_list(*EXPORT_COLUMNS[:-1], "payload_text")
        .iterator(chunk_size=2000)
    )
    lines = _csv_lines(stream) if fmt == "csv" else _jsonl_lines(stream)
    response = StreamingHttpResponse(_batched(lines), content_type=EXPORT_FORMATS[fmt])
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-events-{stamp}.{fmt}"'
    response["X-Export-Rows"] = str(rows)
    return response
