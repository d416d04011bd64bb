"""Alerts endpoints (risk manager and up): the list, the acknowledgement, and the server-sent event stream.

Session authentication beside the JWT: the back office's banner calls these with the admin's session (and its
CSRF token on POST), API clients with their bearer token.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import JWTAuthentication
from alerts import selectors, serializers, services
from core.permissions import has_perms
from core.schema import ERRORS

CanSeeAlerts = has_perms("alerts.receive_alerts")
RETRY_MS = 1000  # the browser reconnects this soon after a stream ends (its lifetime is bounded)
KEEPALIVE_SECONDS = 10.0


class EventStreamRenderer(BaseRenderer):
    """Lets `Accept: text/event-stream` through content negotiation; errors are still JSON."""

    media_type = "text/event-stream"
    format = "event-stream"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return json.dumps(data).encode()


class _AlertsApi(APIView):
    authentication_classes = [JWTAuthentication, SessionAuthentication]
    permission_classes = [CanSeeAlerts]


class AlertsApi(_AlertsApi):
    @extend_schema(
        parameters=[serializers.AlertsQuery], responses={200: OpenApiResponse(), **ERRORS()}, tags=["alerts"]
    )
    def get(self, request: Any) -> Response:
        query = serializers.AlertsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        last = selectors.last_id()  # before the rows: a stream opened from here misses nothing
        rows = selectors.alerts_list(
            since=query.validated_data.get("since"), unacknowledged=query.validated_data["unacknowledged"]
        )
        return Response({"alerts": [services.alert_json(a) for a in rows], "last_id": last})


class AlertAckApi(_AlertsApi):
    @extend_schema(request=serializers.AckIn, responses={200: OpenApiResponse(), **ERRORS(404, 409)}, tags=["alerts"])
    def post(self, request: Any, alert_id: str) -> Response:
        body = serializers.AckIn(data=request.data)
        body.is_valid(raise_exception=True)
        alert = services.alert_acknowledge(actor=request.user, alert_id=alert_id, note=body.validated_data["note"])
        return Response(services.alert_json(alert))


class AlertStreamApi(_AlertsApi):
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(responses={(200, "text/event-stream"): OpenApiResponse(), **ERRORS()}, tags=["alerts"])
    def get(self, request: Any) -> StreamingHttpResponse:
        raw = request.headers.get("Last-Event-ID") or request.query_params.get("last_id") or ""
        last = int(raw) if raw.isdigit() else selectors.last_id()
        try:
            lifetime = float(request.query_params.get("lifetime") or settings.ALERTS_STREAM_SECONDS)
        except ValueError:
            lifetime = settings.ALERTS_STREAM_SECONDS
        if not math.isfinite(lifetime) or lifetime <= 0:
            lifetime = settings.ALERTS_STREAM_SECONDS
        response = StreamingHttpResponse(
            alert_stream(last, min(lifetime, settings.ALERTS_STREAM_SECONDS)), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # a proxy in front must pass each event on at once
        return response


def _frame(alert: dict[str, Any]) -> str:
    return f"id: {alert['id']}\nevent: alert\ndata: {json.dumps(alert)}\n\n"


def alert_stream(last_id: int, lifetime: float) -> Iterator[str]:
    """The alerts after `last_id` as they are raised, for `lifetime` seconds; then the browser reconnects
    (`retry:`) with Last-Event-ID, so a stream holds its web thread for a bounded time and misses nothing.
    Fed by Redis pub/sub (every web process sees every alert); without Redis it polls the rows each second."""
    yield f"retry: {RETRY_MS}\n: stream open\n\n"
    deadline = time.monotonic() + lifetime
    client = services.redis_client()
    pubsub = None
    if client is not None:
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(services.CHANNEL)
        except Exception:  # noqa: BLE001 - Redis down: poll the rows instead
            pubsub = None
    try:
        # Subscribed first, then caught up from the rows: an alert raised in between arrives twice at most,
        # and the id check drops the second copy.
        for alert in selectors.alerts_after(last_id):
            last_id = alert.id
            yield _frame(services.alert_json(alert))
        beat = time.monotonic()
        while (now := time.monotonic()) < deadline:
            found: list[dict[str, Any]] = []
            if pubsub is not None:
                try:
                    message = pubsub.get_message(timeout=min(1.0, deadline - now))
                except Exception:  # noqa: BLE001
                    pubsub = None
                    continue
                if message and message.get("type") == "message":
                    found.append(json.loads(message["data"]))
            else:
                time.sleep(min(1.0, max(deadline - now, 0)))
                found = [services.alert_json(a) for a in selectors.alerts_after(last_id)]
            for shaped in found:
                if shaped["id"] > last_id:
                    last_id = shaped["id"]
                    yield _frame(shaped)
                    beat = time.monotonic()
            if time.monotonic() - beat > KEEPALIVE_SECONDS:
                beat = time.monotonic()
                yield ": keepalive\n\n"
    finally:
        if pubsub is not None:
            pubsub.close()
