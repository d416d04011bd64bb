"""Audit endpoints (compliance and admin): event pages, trails and the period report."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import selectors, serializers
from audit.report import period_report
from core.exceptions import NotFound
from core.permissions import has_perms
from core.schema import ERRORS

CanAudit = has_perms("audit.view_audit_trail")


def _uuid(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"No events for {what} {raw[:64]}") from None


class EventsApi(APIView):
    permission_classes = [CanAudit]

    @extend_schema(
        parameters=[serializers.EventsQuery], responses={200: serializers.EventsOut, **ERRORS()}, tags=["audit"]
    )
    def get(self, request: Any) -> Response:
        query = serializers.EventsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        events, total, exact = selectors.events_page(
            limit=q["limit"],
            offset=q["offset"],
            event_type=q.get("event_type"),
            user=q.get("user") or q.get("user_id"),
            order_id=q.get("order_id"),
            symbol=q.get("symbol"),
            correlation_id=q.get("correlation_id"),
            client_order_id=q.get("client_order_id"),
            since=q.get("since") or q.get("start_time"),
            until=q.get("until") or q.get("end_time"),
        )
        # The v1 shape stays {events, total}; past AUDIT_EVENTS_EXACT_COUNT_LIMIT the total is an estimate,
        # and this header says which (an exact COUNT took 715 ms p99 at 10M events).
        return Response(
            {"events": serializers.EventOut(events, many=True).data, "total": total},
            headers={"X-Total-Exact": "true" if exact else "false"},
        )


class CorrelationTrailApi(APIView):
    permission_classes = [CanAudit]

    @extend_schema(responses={200: serializers.CorrelationTrailOut, **ERRORS(404)}, tags=["audit"])
    def get(self, request: Any, correlation_id: str) -> Response:
        cid = _uuid(correlation_id, "correlation id")
        events = selectors.trail_by_correlation(cid)
        if not events:
            raise NotFound(f"No events for correlation id {cid}")
        return Response(
            {
                "correlation_id": str(cid),
                "events": serializers.EventOut(events, many=True).data,
                "total_events": len(events),
            }
        )


class OrderTrailApi(APIView):
    permission_classes = [CanAudit]

    @extend_schema(responses={200: serializers.OrderTrailOut, **ERRORS(404)}, tags=["audit"])
    def get(self, request: Any, order_id: str) -> Response:
        oid = _uuid(order_id, "order")
        events = selectors.trail_by_order(oid)
        if not events:
            raise NotFound(f"No events for order {oid}")
        return Response(
            {"order_id": str(oid), "events": serializers.EventOut(events, many=True).data, "total_events": len(events)}
        )


class ReportApi(APIView):
    """GET /audit/report?since=&until= (API.md, Governance): the period report as JSON. Reading it is not an
    export (the back office's CSV and PDF downloads are, and are recorded as AUDIT_EXPORTED)."""

    permission_classes = [CanAudit]

    @extend_schema(
        parameters=[serializers.ReportQuery], responses={200: serializers.ReportOut, **ERRORS()}, tags=["audit"]
    )
    def get(self, request: Any) -> Response:
        query = serializers.ReportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = period_report(since=query.validated_data["since"], until=query.validated_data["until"])
        return Response(_jsonable(report.as_json()))


def _jsonable(value: Any) -> Any:
    """Times as ISO 8601 UTC, amounts as JSON numbers (API.md: money is a number, not a string)."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value
