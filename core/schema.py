"""OpenAPI helpers: the error answers every operation documents."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

_ERROR = inline_serializer(name="Error", fields={"detail": serializers.JSONField(), "code": serializers.CharField()})
_DESCRIPTIONS = {
    400: "Bad input: nothing was changed",
    401: "Missing, expired, invalid or revoked token",
    403: "Your role lacks the permission",
    404: "Not found",
    409: "Conflict (duplicate order, or too late to cancel)",
    429: "Throttled or locked out",
    503: "A backing service is unavailable: nothing was changed",
}


def ERRORS(*extra: int) -> dict[int, OpenApiResponse]:  # noqa: N802 - reads as a constant at call sites
    codes = {400, 401, 403, 429, 503, *extra}
    return {code: OpenApiResponse(_ERROR, description=_DESCRIPTIONS[code]) for code in sorted(codes)}


class BearerJWTScheme(OpenApiAuthenticationExtension):
    """Documents accounts.authentication.JWTAuthentication as HTTP bearer (a JWT from /auth/login)."""

    target_class = "accounts.authentication.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
