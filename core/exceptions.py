"""One error hierarchy with machine-readable codes; the DRF exception handler that shapes them is itirp.exceptions."""

from __future__ import annotations

from typing import Any

from rest_framework import status


class ItirpError(Exception):
    """A domain error that has an HTTP meaning; services raise these, never HTTP responses."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code = "error"
    default_message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        fields: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.fields = fields or {}
        self.details = details or {}  # more of the answer's body, beside "detail" and "code"
        if code:
            self.code = code
        super().__init__(self.message)


class InvalidInput(ItirpError):
    code = "invalid"


class NotFound(ItirpError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    default_message = "Not found."


class Conflict(ItirpError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class ServiceUnavailable(ItirpError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"
    default_message = "A required backing service is unavailable; nothing was changed. Try again later."
