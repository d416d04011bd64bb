"""System endpoints: root, health and the JSON metrics of API.md."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import has_perms
from audit.models import Event
from itirp import health
from itirp.schema import ERRORS
from orders.models import Order
from risk import selectors as risk_selectors


class RootApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: serializers.DictField()}, tags=["system"])
    def get(self, request: Any) -> Response:
        return Response(
            {
                "name": "ITIRP - Institutional Trading Infrastructure & Risk Platform",
                "version": settings.ITIRP_VERSION,
                "docs": "/api/docs/",
                "schema": "/api/schema/",
                "admin": "/admin/",
                "endpoints": {
                    "auth": "/api/v1/auth/login",
                    "orders": "/api/v1/orders",
                    "risk": "/api/v1/risk/metrics",
                    "audit": "/api/v1/audit/events",
                    "health": "/api/v1/health",
                    "metrics": "/api/v1/metrics",
                },
            }
        )


class HealthApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: serializers.DictField(), 503: serializers.DictField()},
        tags=["system"],
        description="Checks every backing service for real; 503 names the failing component.",
    )
    def get(self, request: Any) -> Response:
        report = health.run_checks()
        return Response(report, status=200 if report["status"] == "healthy" else 503)


class MetricsApi(APIView):
    permission_classes = [has_perms("risk.view_risk_metrics")]

    @extend_schema(
        responses={200: inline_serializer("SystemMetrics", {"total_orders": serializers.IntegerField()}), **ERRORS()},
        tags=["system"],
    )
    def get(self, request: Any) -> Response:
        from orders.breaker import breaker_snapshot

        breakdown = dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by())
        return Response(
            {
                "total_orders": sum(breakdown.values()),
                "total_events": Event.objects.count(),
                "order_status_breakdown": breakdown,
                "circuit_breaker": breaker_snapshot(),
                "risk_metrics": risk_selectors.risk_metrics(),
                "timestamp": timezone.now(),
            }
        )
