"""Auth endpoints: login, refresh, logout (API.md, Authentication)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from accounts import serializers, services
from core.schema import ERRORS


class LoginThrottle(AnonRateThrottle):
    """Per client address: caps how fast one address can try passwords, whatever the usernames."""

    scope = "login"


class LoginApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(request=serializers.LoginIn, responses={200: serializers.TokenPairOut, **ERRORS()}, tags=["auth"])
    def post(self, request: Any) -> Response:
        data = serializers.LoginIn(data=request.data)
        data.is_valid(raise_exception=True)
        pair = services.auth_login(request=request._request, **data.validated_data)
        return Response(pair)


class RefreshApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(request=serializers.RefreshIn, responses={200: serializers.TokenOut, **ERRORS()}, tags=["auth"])
    def post(self, request: Any) -> Response:
        data = serializers.RefreshIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.auth_refresh(refresh_token=data.validated_data["refresh_token"]))


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=serializers.RefreshIn, responses={200: serializers.MessageOut, **ERRORS()}, tags=["auth"])
    def post(self, request: Any) -> Response:
        data = serializers.RefreshIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.auth_logout(
            user=request.user, access_token=request.auth, refresh_token=data.validated_data["refresh_token"]
        )
        return Response({"message": "Logged out: the refresh token and every access token issued with it are revoked"})


def axes_lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: what AxesMiddleware answers once a login attempt is locked out.

    The middleware replaces whatever the view answered; on the API that must stay the contract's JSON 429
    (the login view already shaped it), on the admin login a plain message with the same wording."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        if original_response is not None and original_response.status_code == 429:
            response = original_response
        else:
            response = JsonResponse({"detail": services.lockout_message(), "code": "locked_out"}, status=429)
    else:
        response = HttpResponse(services.lockout_message(), status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = retry_after
    return response
