"""JWT authentication that also refuses revoked tokens, ended sessions and inactive users, in one query."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.claims import SESSION_CLAIM
from accounts.models import RevokedAccessToken


class JWTAuthentication(SimpleJWTAuthentication):
    """Bearer tokens signed HS256. Expired, tampered, alg-none, wrong-key or revoked tokens get 401."""

    www_authenticate_realm = "api"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        try:
            return super().authenticate(request)
        except (InvalidToken, TokenError, exceptions.AuthenticationFailed) as exc:
            from accounts import services

            services.token_refused_record(request=request, reason=_reason(exc))
            raise exceptions.AuthenticationFailed("Invalid or expired token", code="token_not_valid") from exc

    def get_user(self, validated_token: Any) -> Any:
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
            jti = validated_token[api_settings.JTI_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        # A token without a session claim cannot be tied to a refresh token: it is not one we issued.
        session = validated_token.get(SESSION_CLAIM)
        if not session:
            raise InvalidToken("Token carries no session")
        user = (
            get_user_model()
            .objects.filter(pk=user_id)
            .annotate(
                token_revoked=Exists(RevokedAccessToken.objects.filter(jti=jti, user_id=OuterRef("pk"))),
                session_ended=Exists(
                    BlacklistedToken.objects.filter(token__jti=session, token__user_id=OuterRef("pk"))
                ),
            )
            .first()
        )
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("User not found or inactive", code="user_inactive")
        if user.token_revoked or user.session_ended:
            raise exceptions.AuthenticationFailed("Token has been revoked", code="token_revoked")
        return user


def _reason(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict):
        return str(detail.get("detail", "invalid token"))
    return str(detail or exc)
