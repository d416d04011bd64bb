"""Middleware: each request's correlation id (X-Correlation-ID, a UUID) bound and echoed back; the back
office's middleware, skipped on the API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxMiddleware

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


API_PREFIX = "/api/"


class _BackOfficeOnly:
    """A middleware whose work is the back office's (the admin's pages), passed through on the API.

    The API authenticates by bearer token (DRF sets request.user), so a session, the session's user, flash
    messages and htmx's details are never read there: per submission they cost ~50 us of the web's CPU and ~24
    objects left to the cycle collector (messages' storage and htmx's details point back at the request; 91 -> 67
    per POST /orders, measured with gc.DEBUG_SAVEALL). An API answer is unchanged: none of them adds a header
    unless the session was read. The exception is settings.API_SESSION_PATHS, the API paths the back office's own
    pages call with the admin's session (the alerts banner): everything runs for them as for a page. Django's CSRF
    middleware is not one of these: it runs everywhere (`check --deploy` looks for it by name)."""

    get_response: Callable[[HttpRequest], Any]

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)  # type: ignore[call-arg]
        self.session_paths: tuple[str, ...] = tuple(settings.API_SESSION_PATHS)

    def __call__(self, request: HttpRequest) -> Any:
        path = request.path_info
        if path.startswith(API_PREFIX) and not path.startswith(self.session_paths):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class BackOfficeSessionMiddleware(_BackOfficeOnly, SessionMiddleware):
    pass


class BackOfficeAuthenticationMiddleware(_BackOfficeOnly, AuthenticationMiddleware):
    pass


class BackOfficeMessageMiddleware(_BackOfficeOnly, MessageMiddleware):
    pass


class BackOfficeHtmxMiddleware(_BackOfficeOnly, HtmxMiddleware):
    pass
