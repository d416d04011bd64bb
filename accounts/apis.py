"""Auth endpoints: login, refresh, logout (API.md, Authentication)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from accounts import serializers, services


class LoginThrottle(AnonRateThrottle):
    """Per client address: caps how fast one address can try passwords, whatever the usernames."""

    scope = "login"


class LoginApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(request=serializers.LoginIn, responses={200: serializers.TokenPairOut}, tags=["auth"])
    def post(self, request: Any) -> Response:
        data = serializers.LoginIn(data=request.data)
        data.is_valid(raise_exception=True)
        pair = services.auth_login(request=request._request, **data.validated_data)
        return Response(pair)


class RefreshApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(request=serializers.RefreshIn, responses={200: serializers.TokenOut}, tags=["auth"])
    def post(self, request: Any) -> Response:
        data = serializers.RefreshIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.auth_refresh(refresh_token=data.validated_data["refresh_token"]))


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=serializers.RefreshIn, responses={200: serializers.MessageOut}, tags=["auth"])
    def post(self, request: Any) -> Response:
        data = serializers.RefreshIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.auth_logout(
            user=request.user, access_token=request.auth, refresh_token=data.validated_data["refresh_token"]
        )
        return Response({"message": "Logged out: the refresh token and this access token are revoked"})
