"""403s of Django views (the admin) recorded as PERMISSION_DENIED events, as the API's exception handler does."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from accounts.services import permission_denied_record


class PermissionDeniedAuditMiddleware:
    """Records a PERMISSION_DENIED event when a Django view (the admin) refuses a signed-in user."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        user = getattr(request, "user", None)
        if isinstance(exception, PermissionDenied) and user is not None and user.is_authenticated:
            permission_denied_record(request=request, required=[])
