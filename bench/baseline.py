"""Benchmark baseline only: POST /api/v1/bench/baseline answers a submission's JSON without the database.

Routed only when ITIRP_BENCH_BASELINE=1 is set in the environment (itirp/urls.py), never in production.
It goes through the same middleware, DRF parser and renderer as POST /api/v1/orders, but has no
authentication, no permission, no throttle, no risk decision and no database: what is left is the cost of
the web server, Django and DRF per request, the floor under any real submission.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView


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
