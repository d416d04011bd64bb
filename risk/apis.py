"""Risk endpoints: metrics, positions, limits and the kill switch."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.models import PendingChange
from approvals.serializers import PendingOut, pending_answer
from core.permissions import has_perms
from core.schema import ERRORS
from orders import services as order_services  # halting trading cancels orders: the orders domain's action
from risk import access, selectors, serializers
from risk import services as risk_services
from risk.scopes import FIRM, Scope

TRUE_VALUES = {"true", "True", "1"}
FALSE_VALUES = {"false", "False", "0"}


SCOPE_FILTERS = [
    OpenApiParameter(kind, OpenApiTypes.STR, description=f"one {kind}'s figures (at most one of the four filters)")
    for kind in access.FILTERS
]


def pending_response(change: PendingChange) -> Response:
    """202 {change_id, status: PENDING_APPROVAL}: a change four-eyes holds back (nothing else changed)."""
    return Response(pending_answer(change), status=status.HTTP_202_ACCEPTED)


def _figures_scope(request: Any) -> Scope:
    """The scope of ?book= ?desk= ?trader= ?symbol= (at most one; the firm without): 400 if unknown or
    malformed, 403 if the caller may not view it."""
    scopes = access.filter_scopes(request.query_params)
    if len(scopes) > 1:
        raise ValidationError({"scope": "Use at most one of book, desk, trader and symbol."})
    scope = scopes[0] if scopes else FIRM
    if not access.can_view_figures(request.user, scope):
        raise PermissionDenied(f"You may not view {scope}.")
    return scope


class MetricsApi(APIView):
    permission_classes = [has_perms("risk.view_risk_metrics")]

    @extend_schema(parameters=SCOPE_FILTERS, responses={200: serializers.MetricsOut, **ERRORS()}, tags=["risk"])
    def get(self, request: Any) -> Response:
        return Response(serializers.MetricsOut(selectors.risk_metrics(_figures_scope(request))).data)


class PositionsApi(APIView):
    permission_classes = [has_perms("risk.view_risk_metrics")]

    @extend_schema(parameters=SCOPE_FILTERS, responses={200: serializers.PositionsOut, **ERRORS()}, tags=["risk"])
    def get(self, request: Any) -> Response:
        positions = selectors.positions_list(_figures_scope(request))
        return Response(serializers.PositionsOut({"positions": positions, "total_positions": len(positions)}).data)


class LimitsApi(APIView):
    permission_classes = [has_perms("risk.manage_limits")]

    @extend_schema(responses={200: serializers.LimitsOut, **ERRORS()}, tags=["risk"])
    def get(self, request: Any) -> Response:
        return Response(serializers.LimitsOut(selectors.limits_view()).data)

    @extend_schema(
        request=serializers.LimitsIn, responses={200: serializers.LimitsOut, 202: PendingOut, **ERRORS()}, tags=["risk"]
    )
    def put(self, request: Any) -> Response:
        return self._update(request, partial=False)

    @extend_schema(
        request=serializers.LimitsIn, responses={200: serializers.LimitsOut, 202: PendingOut, **ERRORS()}, tags=["risk"]
    )
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
        if isinstance(limits, PendingChange):
            return pending_response(limits)
        return Response(serializers.LimitsOut(selectors.limits_view(limits)).data)


class KillSwitchApi(APIView):
    permission_classes = [has_perms("risk.toggle_kill_switch")]

    @extend_schema(
        parameters=[OpenApiParameter("enabled", OpenApiTypes.STR, enum=sorted(TRUE_VALUES | FALSE_VALUES))],
        request=serializers.KillSwitchIn,
        responses={200: serializers.KillSwitchOut, 202: PendingOut, **ERRORS()},
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
        written = order_services.kill_switch_set(actor=request.user, enabled=enabled, reason=reason[:1000])
        if isinstance(written, PendingChange):
            return pending_response(written)
        state, cancelled = written
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


def _scope(request: Any, raw: str, *, manage: bool) -> Scope:
    """The scope of a path or body: 400 if malformed or naming nothing, 403 (recorded) if the caller may not
    manage it (or, reading, view it)."""
    scope = access.scope_parse(raw)
    allowed = access.can_manage_scope if manage else access.can_view_scope
    if not allowed(request.user, scope):
        raise PermissionDenied(f"You do not manage {scope}.")
    return scope


class ScopeLimitsApi(APIView):
    """One scope's limits: null where the scope sets none (its parent scopes still apply), and its usage."""

    @extend_schema(
        operation_id="risk_scope_limits_retrieve",
        responses={200: serializers.ScopeLimitsOut, **ERRORS()},
        tags=["risk"],
    )
    def get(self, request: Any, scope: str) -> Response:
        return Response(serializers.ScopeLimitsOut(selectors.scope_limits(_scope(request, scope, manage=False))).data)

    @extend_schema(
        operation_id="risk_scope_limits_update",
        request=serializers.ScopeLimitsIn,
        responses={200: serializers.ScopeLimitsOut, 202: PendingOut, **ERRORS()},
        tags=["risk"],
    )
    def put(self, request: Any, scope: str) -> Response:
        return self._update(request, scope)

    @extend_schema(
        operation_id="risk_scope_limits_partial_update",
        request=serializers.ScopeLimitsIn,
        responses={200: serializers.ScopeLimitsOut, 202: PendingOut, **ERRORS()},
        tags=["risk"],
    )
    def patch(self, request: Any, scope: str) -> Response:
        return self._update(request, scope)

    def _update(self, request: Any, raw: str) -> Response:
        scope = _scope(request, raw, manage=True)
        if not isinstance(request.data, dict):
            raise ValidationError({"body": "A JSON object of limits and a reason is required."})
        changes = dict(request.data)
        reason = changes.pop("reason", None)
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError({"reason": "A reason is required."})
        if not changes:
            raise ValidationError({"body": "Give at least one limit to set or clear."})
        limits = risk_services.scope_limits_update(actor=request.user, scope=scope, changes=changes, reason=reason)
        if isinstance(limits, PendingChange):
            return pending_response(limits)
        return Response(serializers.ScopeLimitsOut(selectors.scope_limits(scope, limits)).data)


class ScopeLimitsListApi(APIView):
    permission_classes = [has_perms("risk.manage_limits")]

    @extend_schema(responses={200: serializers.ScopesLimitsOut, **ERRORS()}, tags=["risk"])
    def get(self, request: Any) -> Response:
        scopes = [s for s in selectors.limited_scopes() if access.can_view_scope(request.user, s)]
        return Response(serializers.ScopesLimitsOut({"scopes": [selectors.scope_limits(s) for s in scopes]}).data)


class TradingStateApi(APIView):
    @extend_schema(responses={200: serializers.TradingStatesOut, **ERRORS()}, tags=["risk"])
    def get(self, request: Any) -> Response:
        return Response(serializers.TradingStatesOut({"states": selectors.trading_states()}).data)

    @extend_schema(
        request=serializers.TradingStateIn,
        responses={200: serializers.TradingStateSetOut, 202: PendingOut, **ERRORS()},
        tags=["risk"],
    )
    def post(self, request: Any) -> Response:
        data = serializers.TradingStateIn(data=request.data)
        data.is_valid(raise_exception=True)
        scope = _scope(request, data.validated_data["scope"], manage=True)
        if scope == FIRM and not request.user.has_perm("risk.toggle_kill_switch"):
            raise PermissionDenied("Your role may not halt or release the firm (the kill switch).")
        state, reason = data.validated_data["state"], data.validated_data["reason"]
        written = order_services.scope_state_set(actor=request.user, scope=scope, state=state, reason=reason)
        if isinstance(written, PendingChange):
            return pending_response(written)
        previous, cancelled = written
        answer = {"scope": str(scope), "state": state, "previous": previous, "reason": reason}
        return Response(serializers.TradingStateSetOut({**answer, "cancelled_orders": len(cancelled)}).data)
