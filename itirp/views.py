"""System endpoints: root, health and the JSON metrics of API.md."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import has_perms
from core.schema import ERRORS
from itirp import health
from itirp.counts import system_counts
from orders.breaker import breaker_snapshot
from risk import selectors as risk_selectors


class RootApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, tags=["system"])
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
        responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT},
        tags=["system"],
        description=(
            "Checks database, broker, workers (a Celery ping) and the circuit breaker for real, in parallel, "
            "answering within HEALTH_CHECK_TIMEOUT_SECONDS whatever hangs; 503 names the failing components."
        ),
    )
    def get(self, request: Any) -> Response:
        report = health.run_checks()
        return Response(report, status=200 if report["status"] == "healthy" else 503)


class MetricsApi(APIView):
    """API.md's JSON metrics. Counts come from itirp.counts.system_counts: kept incrementally from the
    append-only event log, so a call costs what is new since the last one, not a scan of the tables."""

    permission_classes = [has_perms("risk.view_risk_metrics")]

    @extend_schema(
        responses={
            200: inline_serializer(
                "SystemMetrics",
                {
                    "total_orders": serializers.IntegerField(),
                    "total_events": serializers.IntegerField(),
                    "order_status_breakdown": serializers.DictField(child=serializers.IntegerField()),
                    "circuit_breaker": serializers.DictField(),
                    "risk_metrics": serializers.DictField(),
                    "timestamp": serializers.DateTimeField(),
                },
            ),
            **ERRORS(),
        },
        tags=["system"],
    )
    def get(self, request: Any) -> Response:
        return Response(
            {
                **system_counts(),
                "circuit_breaker": breaker_snapshot(),
                "risk_metrics": risk_selectors.risk_metrics(),
                "timestamp": timezone.now(),
            }
        )


def own_password_change(request: Any) -> Any:
    """Send a signed-in staff user to the audited password form for themself."""
    from django.contrib.auth.views import redirect_to_login
    from django.shortcuts import redirect

    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), "admin:login")
    return redirect("admin:accounts_user_password_change", request.user.pk)
