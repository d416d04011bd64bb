"""Request hardening middleware: bodies over the size limit are refused with 413 before anything reads them.

Django checks DATA_UPLOAD_MAX_MEMORY_SIZE only when a form body is read through request.POST/request.body;
DRF's parsers read the raw stream, so without this a JSON body of any size would be read into memory.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    """413 for a declared Content-Length over DATA_UPLOAD_MAX_MEMORY_SIZE; 400 for a malformed one, and 400 for
    a NUL character in the query string (PostgreSQL text cannot hold one: an admin search for it was a 500)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            return JsonResponse({"detail": "Malformed Content-Length header.", "code": "parse_error"}, status=400)
        if limit is not None and length > limit:
            return JsonResponse(
                {"detail": f"Request body too large: {length} bytes, the limit is {limit}.", "code": "too_large"},
                status=413,
            )
        if "\x00" in request.META.get("QUERY_STRING", "") or any(
            "\x00" in value for values in request.GET.lists() for value in values[1]
        ):
            return JsonResponse(
                {"detail": "NUL characters are not allowed in the query.", "code": "invalid"}, status=400
            )
        return self.get_response(request)
