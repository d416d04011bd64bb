"""The one DRF exception handler: core's error hierarchy, validation and parse errors, a database that went
away (503) and permission denials (each recorded as a PERMISSION_DENIED event) shaped as API.md's errors."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.services import permission_denied_record
from core.exceptions import ItirpError

logger = logging.getLogger("itirp.errors")


def _field_errors(detail: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Flatten DRF's nested validation detail into one entry per bad field."""
    if isinstance(detail, dict):
        entries: list[dict[str, Any]] = []
        for key, value in detail.items():
            name = key if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors":
                name = prefix or "body"
            entries.extend(_field_errors(value, name))
        return entries
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            field = prefix or "body"
            return [{"field": field, "loc": ["body", *field.split(".")], "msg": " ".join(str(d) for d in detail)}]
        entries = []
        for index, item in enumerate(detail):
            entries.extend(_field_errors(item, f"{prefix}.{index}" if prefix else str(index)))
        return entries
    field = prefix or "body"
    return [{"field": field, "loc": ["body", *field.split(".")], "msg": str(detail)}]


def _record_permission_denied(context: dict[str, Any]) -> None:
    """Every 403 of the API is an event, whichever permission class or view refused."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return
    view = context.get("view")
    required: list[str] = []
    for permission in getattr(view, "get_permissions", list)():
        required.extend(getattr(permission, "required", ()))
    permission_denied_record(request=request, required=required)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, drf_exceptions.PermissionDenied):
        _record_permission_denied(context)
    if isinstance(exc, ItirpError):
        headers = {"Retry-After": "5"} if exc.status_code == 503 else None
        detail: Any = exc.message
        if exc.fields:
            detail = [{"field": f, "loc": ["body", f], "msg": m} for f, m in exc.fields.items()]
        return Response({"detail": detail, "code": exc.code, **exc.details}, status=exc.status_code, headers=headers)
    if isinstance(exc, (OperationalError, InterfaceError)) or (
        isinstance(exc, DatabaseError) and "connection" in str(exc).lower()
    ):
        logger.error("database unavailable: %s", exc.__class__.__name__)
        return Response(
            {"detail": "Database unavailable; nothing was changed. Try again later.", "code": "database_unavailable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, drf_exceptions.ValidationError):
        return Response({"detail": _field_errors(exc.detail), "code": "invalid"}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, drf_exceptions.ParseError):
        return Response({"detail": f"Malformed request body: {exc.detail}", "code": "parse_error"}, status=400)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        codes = exc.get_codes()
        response.data = {
            "detail": response.data.get("detail", response.data),
            "code": codes if isinstance(codes, str) else "error",
        }
    return response
