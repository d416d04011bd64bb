"""Analytics endpoints: VaR and expected shortfall, stress scenarios, P&L by scope.

Who sees what follows GET /risk/metrics (risk.apis): the risk.view_risk_metrics permission, then the scope's
figures only for a caller who may view them (risk.access.can_view_figures: a book or desk they may view,
themselves as a trader or any trader if their role sees every order; the firm and any symbol). Reads only:
nothing is written, refused or not.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import scenarios, selectors, serializers
from core.permissions import has_perms
from core.schema import ERRORS
from market import directory
from risk import access
from risk.scopes import Scope

SCOPE_PARAM = OpenApiParameter(
    "scope", OpenApiTypes.STR, description="firm, desk:<code>, book:<code>, trader:<username> or symbol:<SYMBOL>"
)


def _figures_scope(request: Any, raw: str) -> Scope:
    """400 if malformed or naming nothing, 403 if the caller may not view its figures."""
    scope = access.scope_parse(raw)
    if not access.can_view_figures(request.user, scope):
        raise PermissionDenied(f"You may not view {scope}.")
    return scope


class VarApi(APIView):
    permission_classes = [has_perms("risk.view_risk_metrics")]

    @extend_schema(
        parameters=[serializers.VarQuery], responses={200: serializers.VarOut, **ERRORS()}, tags=["analytics"]
    )
    def get(self, request: Any) -> Response:
        query = serializers.VarQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        scope = _figures_scope(request, q["scope"])
        intent = q.get("with_order")
        if intent is not None and directory.terms(intent.symbol) is None:
            raise ValidationError({"with_order": f"No instrument {intent.symbol!r}."})
        answer = selectors.var_answer(
            scope, method=q["method"], confidence=q["confidence"], horizon_days=q["horizon_days"], with_order=intent
        )
        return Response(serializers.VarOut(answer).data)


class StressScenariosApi(APIView):
    permission_classes = [has_perms("risk.view_risk_metrics")]

    @extend_schema(responses={200: serializers.ScenariosOut, **ERRORS()}, tags=["analytics"])
    def get(self, request: Any) -> Response:
        return Response(serializers.ScenariosOut({"scenarios": selectors.scenarios_list()}).data)


class StressApi(APIView):
    permission_classes = [has_perms("risk.view_risk_metrics")]

    @extend_schema(request=serializers.StressIn, responses={200: serializers.StressOut, **ERRORS()}, tags=["analytics"])
    def post(self, request: Any) -> Response:
        body = serializers.StressIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        scope = _figures_scope(request, data["scope"])
        name = data.get("scenario")
        if name is not None:
            found = selectors.scenario_shocks(name)
            if found is None:
                raise ValidationError(
                    {"scenario": f"Unknown scenario {name!r}: GET /risk/stress/scenarios lists them."}
                )
            shocks: dict[str, float] = found
        else:
            try:
                shocks = scenarios.validate(data["shocks"], set(directory.all_terms()))
            except scenarios.ShockError as exc:
                raise ValidationError({"shocks": str(exc)}) from exc
        answer = selectors.stress_answer(selectors.portfolio(scope), shocks)
        return Response(serializers.StressOut({**answer, "scenario": name, "shocks": shocks}).data)


class PnlApi(APIView):
    permission_classes = [has_perms("risk.view_risk_metrics")]

    @extend_schema(parameters=[SCOPE_PARAM], responses={200: serializers.PnlOut, **ERRORS()}, tags=["analytics"])
    def get(self, request: Any) -> Response:
        scope = _figures_scope(request, request.query_params.get("scope", "firm"))
        return Response(serializers.PnlOut(selectors.pnl_answer(scope)).data)
