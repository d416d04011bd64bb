"""Instruments endpoints: the reference data any signed-in role may read."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.schema import ERRORS
from market import selectors, serializers
from market.models import AssetClass

LIST_QUERY = [
    OpenApiParameter("asset_class", OpenApiTypes.STR, enum=AssetClass.values, description="only this asset class"),
    OpenApiParameter("search", OpenApiTypes.STR, description="symbol or name contains this (any case)"),
]


class InstrumentListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="instruments_list",
        parameters=LIST_QUERY,
        responses={200: serializers.InstrumentsOut, **ERRORS()},
        tags=["instruments"],
    )
    def get(self, request: Any) -> Response:
        instruments = selectors.instrument_list(
            asset_class=request.query_params.get("asset_class"), search=request.query_params.get("search")
        )
        return Response(serializers.InstrumentsOut({"instruments": instruments, "total": len(instruments)}).data)


class InstrumentDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="instruments_retrieve",
        responses={200: serializers.InstrumentOut, **ERRORS(404)},
        tags=["instruments"],
    )
    def get(self, request: Any, symbol: str) -> Response:
        return Response(serializers.InstrumentOut(selectors.instrument_get(symbol)).data)
