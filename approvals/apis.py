"""Approvals endpoints (API.md Governance): the pending changes, approve and reject with a reason."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import selectors, serializers
from core.schema import ERRORS
from risk import four_eyes  # deciding applies risk changes: the risk domain's use case


class ApprovalsApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=["PENDING", "APPROVED", "REJECTED", "EXPIRED"])],
        responses={200: serializers.ChangesOut, **ERRORS()},
        tags=["governance"],
    )
    def get(self, request: Any) -> Response:
        if not four_eyes.may_list(request.user):
            raise PermissionDenied("Your role may not see pending changes.")
        query = serializers.StatusIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        changes = [
            c
            for c in selectors.changes_list(status=query.validated_data.get("status"))
            if four_eyes.visible(request.user, c)
        ]
        return Response(serializers.ChangesOut({"approvals": changes, "total": len(changes)}).data)


class _DecisionApi(APIView):
    decide = staticmethod(four_eyes.change_approve)

    def post(self, request: Any, change_id: str) -> Response:
        body = serializers.DecisionIn(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        try:
            change = type(self).decide(actor=request.user, change_id=change_id, reason=body.validated_data["reason"])
        except four_eyes.DecisionForbidden as exc:
            raise PermissionDenied(exc.message) from exc  # recorded as PERMISSION_DENIED like every API 403
        return Response(serializers.ChangeOut(change).data)


class ApproveApi(_DecisionApi):
    decide = staticmethod(four_eyes.change_approve)

    @extend_schema(
        request=serializers.DecisionIn, responses={200: serializers.ChangeOut, **ERRORS(404, 409)}, tags=["governance"]
    )
    def post(self, request: Any, change_id: str) -> Response:
        return super().post(request, change_id)


class RejectApi(_DecisionApi):
    decide = staticmethod(four_eyes.change_reject)

    @extend_schema(
        request=serializers.DecisionIn, responses={200: serializers.ChangeOut, **ERRORS(404, 409)}, tags=["governance"]
    )
    def post(self, request: Any, change_id: str) -> Response:
        return super().post(request, change_id)
