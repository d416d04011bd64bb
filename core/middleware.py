"""Middleware: each request's correlation id (X-Correlation-ID, a UUID) bound and echoed back."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core import context

HEADER = "X-Correlation-ID"


class CorrelationIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # A malformed header (not a UUID, or an injection attempt) is replaced, never echoed.
        correlation = context.parse_uuid(request.headers.get(HEADER)) or uuid.uuid4()
        context.bind(correlation=correlation, address=request.META.get("REMOTE_ADDR"))
        request.correlation_id = correlation  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
        finally:
            context.bind(correlation=None, address=None)
        response[HEADER] = str(correlation)
        return response
