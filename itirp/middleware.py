"""Middleware: each request's correlation id (X-Correlation-ID, a UUID) bound and echoed back; 403s of
Django views (the admin) recorded as PERMISSION_DENIED events, as the API's exception handler does."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from itirp import context

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


class PermissionDeniedAuditMiddleware:
    """Records a PERMISSION_DENIED event when a Django view (the admin) refuses a signed-in user."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        user = getattr(request, "user", None)
        if isinstance(exception, PermissionDenied) and user is not None and user.is_authenticated:
            from accounts.services import permission_denied_record

            permission_denied_record(request=request, required=[])
