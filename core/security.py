"""Request hardening middleware: bodies over the size limit are refused with 413 before anything reads them.

Django checks DATA_UPLOAD_MAX_MEMORY_SIZE only when a form body is read through request.POST/request.body;
DRF's parsers read the raw stream, so without this a JSON body of any size would be read into memory.

A chunked body (Transfer-Encoding: chunked, no Content-Length) is read here: gunicorn decodes the chunks, but
Django and DRF size the body by CONTENT_LENGTH alone and would read it as empty (a valid order answered 400
"field required"). It is read up to the limit, so a chunked body over it is a 413 like a declared one.
Answers given here come before core.logs.RequestLogMiddleware, so this middleware writes their request line.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.logs import request_log_early_answer


class RequestSizeLimitMiddleware:
    """413 for a declared Content-Length over DATA_UPLOAD_MAX_MEMORY_SIZE; 400 for a malformed one, and 400 for
    a NUL character in the query string (PostgreSQL text cannot hold one: an admin search for it was a 500)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        response = self._refusal(request) or self._chunked(request) or self.get_response(request)
        request_log_early_answer(request, response, started=started)
        return response

    @staticmethod
    def _chunked(request: HttpRequest) -> HttpResponse | None:
        if "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() or request.META.get(
            "CONTENT_LENGTH"
        ):
            return None
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        stream = request.META["wsgi.input"]
        data = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(data) > limit:
            return JsonResponse(
                {
                    "detail": f"Request body too large: over {limit} bytes (chunked), the limit is {limit}.",
                    "code": "too_large",
                },
                status=413,
            )
        # From here on the request is one with a Content-Length, for Django and DRF alike.
        request.META["CONTENT_LENGTH"] = str(len(data))
        # Django reads the body from _stream; the stubs type it as a plain binary stream.
        request._stream = LimitedStream(io.BytesIO(data), len(data))  # type: ignore[assignment]
        return None

    @staticmethod
    def _refusal(request: HttpRequest) -> HttpResponse | None:
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
        return None
