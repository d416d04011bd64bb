"""Risk endpoints: metrics, positions, limits and the kill switch."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import has_perms
from core.schema import ERRORS
from orders import services as order_services  # halting trading cancels orders: the orders domain's action
from risk import selectors, serializers

TRUE_VALUES = {"true", "True", "1"}
FALSE_VALUES = {"false", "False", "0"}


class MetricsApi(APIView):
    permission_classes = [has_perms("risk.view_risk_metrics")]

    @extend_schema(responses={200: serializers.MetricsOut, **ERRORS()}, tags=["risk"])
    def get(self, request: Any) -> Response:
        return Response(serializers.MetricsOut(selectors.risk_metrics()).data)


class PositionsApi(APIView):
    permission_classes = [has_perms("risk.view_risk_metrics")]

    @extend_schema(responses={200: serializers.PositionsOut, **ERRORS()}, tags=["risk"])
    def get(self, request: Any) -> Response:
        positions = selectors.positions_list()
        return Response(serializers.PositionsOut({"positions": positions, "total_positions": len(positions)}).data)


class LimitsApi(APIView):
    permission_classes = [has_perms("risk.manage_limits")]

    @extend_schema(responses={200: serializers.LimitsOut, **ERRORS()}, tags=["risk"])
    def get(self, request: Any) -> Response:
        return Response(serializers.LimitsOut(selectors.limits_view()).data)

    @extend_schema(request=serializers.LimitsIn, responses={200: serializers.LimitsOut, **ERRORS()}, tags=["risk"])
    def put(self, request: Any) -> Response:
        return self._update(request, partial=False)

    @extend_schema(request=serializers.LimitsIn, responses={200: serializers.LimitsOut, **ERRORS()}, tags=["risk"])
    def patch(self, request: Any) -> Response:
        return self._update(request, partial=True)

    def _update(self, request: Any, *, partial: bool) -> Response:
        data = serializers.LimitsIn(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        reason = values.pop("reason", "")
        kill_switch = values.pop("kill_switch_enabled", None)
        if kill_switch is not None and kill_switch != selectors.risk_state().kill_switch_enabled:
            if not request.user.has_perm("risk.toggle_kill_switch"):
                raise PermissionDenied("Your role may not turn the kill switch on or off.")
        limits = order_services.controls_update(
            actor=request.user, kill_switch_enabled=kill_switch, reason=reason, **values
        )
        return Response(serializers.LimitsOut(selectors.limits_view(limits)).data)


class KillSwitchApi(APIView):
    permission_classes = [has_perms("risk.toggle_kill_switch")]

    @extend_schema(
        parameters=[OpenApiParameter("enabled", OpenApiTypes.STR, enum=sorted(TRUE_VALUES | FALSE_VALUES))],
        request=serializers.KillSwitchIn,
        responses={200: serializers.KillSwitchOut, **ERRORS()},
        tags=["risk"],
    )
    def post(self, request: Any) -> Response:
        raw = request.query_params.get("enabled")
        if raw is not None:
            if raw not in TRUE_VALUES | FALSE_VALUES:
                raise ValidationError({"enabled": "Use true/True/1 or false/False/0."})
            body = serializers.KillSwitchReasonIn(data=request.data or {})
            body.is_valid(raise_exception=True)
            enabled = raw in TRUE_VALUES
            reason = body.validated_data["reason"] or request.query_params.get("reason", "")
        else:
            data = serializers.KillSwitchIn(data=request.data)
            data.is_valid(raise_exception=True)
            enabled, reason = data.validated_data["enabled"], data.validated_data["reason"]
        state, cancelled = order_services.kill_switch_set(actor=request.user, enabled=enabled, reason=reason[:1000])
        return Response(
            serializers.KillSwitchOut(
                {
                    "kill_switch_enabled": state.kill_switch_enabled,
                    "message": "Kill switch activated" if enabled else "Kill switch deactivated",
                    "timestamp": timezone.now(),
                    "cancelled_orders": len(cancelled),
                }
            ).data
        )
