"""Compliance pages: the trail of one request or order as a timeline, the streamed export of a selection (with
each event's hashes and seal), the seal and verification status, and the period report with its downloads."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Max, OuterRef, Subquery, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.utils import timezone

from audit import selectors
from audit.models import Event, EventHash, EventType, Seal
from audit.presentation import parse_moment
from audit.report import as_csv, period_report, sections
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
    "content_hash",
    "chain_hash",
    "seal",
    "seal_hash",
    "payload",
]
# Each event's hashes as the sealer recorded them and the seal that covers it (empty while not sealed yet):
# what manage.py export_audit carries, so a row can be checked against the seal chain.
HASH_COLUMNS = ("content_hash", "chain_hash", "seal", "seal_hash")
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
    hashes = EventHash.objects.filter(sequence=OuterRef("sequence"))
    covering = Seal.objects.filter(last_sequence__gte=OuterRef("sequence"), first_sequence__lte=OuterRef("sequence"))
    covering = covering.order_by("last_sequence")
    stream = (
        selection.order_by("sequence")
        .annotate(
            payload_text=Cast("payload", TextField()),
            content_hash=Subquery(hashes.values("content_hash")[:1]),
            chain_hash=Subquery(hashes.values("chain_hash")[:1]),
            seal=Subquery(covering.values("number")[:1]),
            seal_hash=Subquery(covering.values("seal_hash")[:1]),
        )
        .values_list(*EXPORT_COLUMNS[:-1], "payload_text")
        .iterator(chunk_size=2000)
    )
    lines = _csv_lines(stream) if fmt == "csv" else _jsonl_lines(stream)
    response = StreamingHttpResponse(_batched(lines), content_type=EXPORT_FORMATS[fmt])
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-events-{stamp}.{fmt}"'
    response["X-Export-Rows"] = str(rows)
    return response


def integrity_status() -> dict[str, Any]:
    """The event list's header: the newest seal, how many events are newer, the newest verification."""
    seal = Seal.objects.order_by("-number").first()
    newer = Event.objects.filter(sequence__gt=seal.last_sequence if seal else 0)
    capped = newer.order_by()[:10_001].count()
    label = (
        ""
        if not capped
        else (f"{capped:,} event{'s' if capped != 1 else ''}" if capped <= 10_000 else "over 10,000 events")
    )
    verified = (
        Event.objects.filter(event_type=EventType.AUDIT_VERIFIED)
        .order_by("-sequence")
        .only("timestamp", "payload")
        .first()
    )
    verification = None
    if verified is not None:
        payload = verified.payload if isinstance(verified.payload, dict) else {}
        ok = bool(payload.get("ok"))
        detail = (
            f"{payload.get('events_verified', 0):,} events in {payload.get('seals', 0):,} seals"
            if ok
            else f"first bad event #{payload.get('first_bad_sequence')}: {payload.get('detail')}"
        )
        verification = {"timestamp": verified.timestamp, "ok": ok, "detail": detail}
    return {"seal": seal, "unsealed_label": label, "verification": verification}


NUMERIC = re.compile(r"^-?[\d,]+(\.\d+)?$")
REPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


def report_period(params: QueryDict) -> tuple[Any, Any, list[str]]:
    """since/until from a query (UTC when naive; seconds optional); errors as sentences."""
    errors = []
    bounds = {}
    for name, label in (("since", "From"), ("until", "To")):
        raw = (params.get(name) or "").strip()
        if not raw:
            errors.append(f"{label} is required")
            continue
        moment = parse_moment(raw)
        if moment is None:
            errors.append(f"{label}: {raw[:40]!r} is not a date and time")
        else:
            bounds[name] = moment
    if not errors and bounds["since"] >= bounds["until"]:
        errors.append("From must be before To")
    return bounds.get("since"), bounds.get("until"), errors


def report_view(request: HttpRequest, *, model_admin: Any) -> HttpResponse:
    """The period report page; ?download=csv|pdf answers the file and records AUDIT_EXPORTED."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    fmt = request.GET.get("download")
    submitted = "since" in request.GET or "until" in request.GET
    since, until, errors = report_period(request.GET) if submitted else (None, None, [])
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Period report",
        "since": request.GET.get("since", ""),
        "until": request.GET.get("until", ""),
        "errors": errors,
        "can_export": request.user.has_perm("audit.export_audit"),
    }
    if errors:
        return TemplateResponse(request, "admin/audit/report.html", context, status=400)
    if since is None or until is None:
        return TemplateResponse(request, "admin/audit/report.html", context)
    if fmt is not None:
        if fmt not in REPORT_FORMATS:
            return HttpResponseBadRequest("download must be csv or pdf")
        if not request.user.has_perm("audit.export_audit"):
            raise PermissionDenied
        return _report_download(request, since, until, fmt)
    report = period_report(since=since, until=until)
    context.update(
        {
            "report": report,
            "sections": [
                (title, columns, [[(cell, bool(NUMERIC.match(cell))) for cell in row] for row in rows])
                for title, columns, rows in sections(report)
            ],
            "since": since.strftime("%Y-%m-%d %H:%M:%S"),
            "until": until.strftime("%Y-%m-%d %H:%M:%S"),
            "query": QueryDict(mutable=True),
        }
    )
    context["query"].update({"since": context["since"], "until": context["until"]})
    return TemplateResponse(request, "admin/audit/report.html", context)


def _report_download(request: HttpRequest, since: Any, until: Any, fmt: str) -> HttpResponse:
    from audit.report_pdf import as_pdf  # reportlab is loaded only when a PDF is asked for

    now = timezone.now()
    with transaction.atomic():
        report = period_report(since=since, until=until)
        body: bytes = (
            as_csv(report).encode("utf-8")
            if fmt == "csv"
            else as_pdf(
                report, generated_by=request.user.get_username(), generated_at=now.strftime("%Y-%m-%d %H:%M:%S UTC")
            )
        )
        event_record(
            event_type=EventType.AUDIT_EXPORTED,
            actor=request.user,
            payload={
                "kind": "period_report",
                "format": fmt,
                "since": since.isoformat(),
                "until": until.isoformat(),
                "orders": report.orders_total,
                "bytes": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            },
        )
    response = HttpResponse(body, content_type=REPORT_FORMATS[fmt])
    name = f"itirp-report-{since:%Y%m%dT%H%M%SZ}-{until:%Y%m%dT%H%M%SZ}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
