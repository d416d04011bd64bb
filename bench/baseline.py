"""Benchmark baselines only, routed only by the benchmark's own settings (bench.settings -> bench/urls.py),
never by the project's.

- POST /api/v1/bench/baseline answers a submission's JSON without the database. It goes through the same
  middleware, DRF parser and renderer as POST /api/v1/orders, but has no authentication, no permission, no
  throttle, no risk decision and no database: the cost of the web server, Django and DRF per request.
- POST /api/v1/bench/guarded is POST /api/v1/orders without the decision: the same JWT authentication
  (and its query), permission, throttle and input validation, then the same answer's shape. What it costs
  is the floor under any implementation of the decision in this web tier.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import serializers
from orders.apis import OrdersApi


class BaselineApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []

    def post(self, request: Any) -> Response:
        body = request.data
        return Response(
            {
                "order_id": str(uuid.uuid4()),
                "status": "APPROVED" if body.get("symbol") else "REJECTED",
                "correlation_id": str(getattr(request, "correlation_id", uuid.uuid4())),
                "timestamp": timezone.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "message": "Order approved - all pre-trade risk checks passed",
            }
        )


class GuardedBaselineApi(OrdersApi):
    def post(self, request: Any) -> Response:
        data = serializers.OrderIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            {
                "order_id": str(uuid.uuid4()),
                "status": "APPROVED",
                "correlation_id": str(getattr(request, "correlation_id", uuid.uuid4())),
                "timestamp": timezone.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "message": "Order approved - all pre-trade risk checks passed",
            }
        )
