"""Use-cases that write for accounts: login, refresh, logout, roles, deactivation. Each records its event."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.anonymous import refuse_anonymous_stand_in
from accounts.claims import SESSION_CLAIM
from accounts.models import RevokedAccessToken, Role, User
from accounts.roles import STAFF_ROLES
from audit.models import EventType
from audit.services import event_record
from books.services import default_book_assign
from core.exceptions import ItirpError

logger = logging.getLogger("itirp.accounts")


class AuthenticationError(ItirpError):
    status_code = 401
    code = "authentication_failed"
    default_message = "Incorrect username or password"


class LockedOut(ItirpError):
    status_code = 429
    code = "locked_out"


class InvalidRefreshToken(ItirpError):
    status_code = 401
    code = "token_not_valid"
    default_message = "Refresh token is invalid, expired or revoked"


def _client_address(request: HttpRequest | Request | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def _token_pair(user: User) -> dict[str, Any]:
    refresh = RefreshToken.for_user(user)
    refresh["sub"] = user.username
    refresh["role"] = user.role
    access = refresh.access_token
    access[SESSION_CLAIM] = refresh[api_settings.JTI_CLAIM]
    return {
        "access_token": str(access),
        "token_type": "bearer",
        "expires_in": int(settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        "refresh_token": str(refresh),
    }


def auth_login(*, request: HttpRequest, username: str, password: str) -> dict[str, Any]:
    """Check credentials (django-axes counts failures and locks a username out) and issue a token pair."""
    user = authenticate(request=request, username=username, password=password)
    if user is None:
        locked = login_failed_record(request=request, username=username)
        if locked:
            raise LockedOut(lockout_message())
        raise AuthenticationError()
    with transaction.atomic():
        pair = _token_pair(user)
        # What django.contrib.auth.login() would announce: axes clears the failure count (AXES_RESET_ON_SUCCESS)
        # and last_login is set. Tokens replace the session, so login() itself is not called.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        event_record(event_type=EventType.LOGIN_SUCCEEDED, actor=user, payload={"role": user.role})
    return pair


class ClaimedUser:
    """The actor of a failed sign-in: the username typed (and the account's key when it exists), so the
    trail's user filter finds the attempts made on an account, and attempts on names that do not exist."""

    def __init__(self, username: str, pk: int | None) -> None:
        self.username, self.pk = username, pk


def login_failed_record(
    *, request: HttpRequest | None, username: str, channel: str = "api", authenticated: User | None = None
) -> bool:
    """LOGIN_FAILED (and LOGIN_LOCKED_OUT when axes locks the name) with why: `locked_out`, `unknown_user`,
    `inactive`, `not_staff` (the right password at /admin/ for a user who may not use it: `authenticated`)
    or `bad_password`. The actor columns carry the username typed. Returns whether the name is locked.

    Django's authenticate() swallows axes' PermissionDenied, so a lockout is only visible as the flag axes
    leaves on the request: set when this failure reached the limit or the username was locked already."""
    name = username[:150]
    counted = getattr(request, "axes_failures_since_start", None) is not None
    locked = bool(getattr(request, "axes_locked_out", False))
    account = authenticated or User.objects.filter(**{User.USERNAME_FIELD: name}).first()
    if locked:
        reason = "locked_out"
    elif account is None:
        reason = "unknown_user"
    elif not account.is_active:
        reason = "inactive"  # said without checking the password: no second hash per attempt
    elif authenticated is not None:
        reason = "not_staff"
    else:
        reason = "bad_password"
    actor = ClaimedUser(name, account.pk if account is not None else None)
    payload: dict[str, Any] = {"username": name, "reason": reason}
    if channel != "api":
        payload["channel"] = channel
    with transaction.atomic():
        if counted or not locked:
            event_record(event_type=EventType.LOGIN_FAILED, actor=actor, payload=payload)
        if locked:
            event_record(
                event_type=EventType.LOGIN_LOCKED_OUT,
                actor=actor,
                payload={**payload, "failure_limit": settings.AXES_FAILURE_LIMIT},
            )
    return locked


def lockout_message() -> str:
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    span = f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"
    return (
        f"Too many failed login attempts for this account: it is locked for {span}. "
        "Try again later or ask an administrator to unlock it."
    )


def _refresh_token(encoded: str) -> RefreshToken:
    """The refresh token an encoded string stands for; raises TokenError if it is invalid, expired or revoked."""
    # simplejwt annotates Token(token) as a Token, but it takes the encoded string (as its own serializers pass).
    return RefreshToken(encoded)  # type: ignore[arg-type]


def auth_refresh(*, refresh_token: str) -> dict[str, Any]:
    try:
        refresh = _refresh_token(refresh_token)  # verifies signature, expiry and the blacklist
    except TokenError as exc:
        refresh_refused_record(reason=str(exc))
        raise InvalidRefreshToken() from exc
    user = User.objects.filter(pk=refresh.get("user_id"), is_active=True).first()
    if user is None:
        refresh_refused_record(reason="the user of this refresh token is inactive or gone")
        raise InvalidRefreshToken("The user of this refresh token is inactive or gone")
    access = refresh.access_token
    access["role"] = user.role
    access[SESSION_CLAIM] = refresh[api_settings.JTI_CLAIM]
    with transaction.atomic():
        event_record(event_type=EventType.TOKEN_REFRESHED, actor=user)
    return {
        "access_token": str(access),
        "token_type": "bearer",
        "expires_in": int(settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    }


def auth_logout(*, user: User, access_token: AccessToken, refresh_token: str) -> None:
    """End both tokens of a session: the refresh token given and the access token presented."""
    try:
        refresh = _refresh_token(refresh_token)
    except TokenError as exc:
        refresh_refused_record(reason=str(exc), actor=user)
        raise InvalidRefreshToken() from exc
    if str(refresh.get("user_id")) != str(user.pk):
        refresh_refused_record(reason="refresh token of another user presented at logout", actor=user)
        raise InvalidRefreshToken("That refresh token does not belong to you")
    with transaction.atomic():
        refresh.blacklist()
        RevokedAccessToken.objects.get_or_create(
            jti=access_token["jti"],
            defaults={"user": user, "expires_at": datetime.fromtimestamp(access_token["exp"], tz=UTC)},
        )
        event_record(event_type=EventType.LOGGED_OUT, actor=user)


def token_refused_record(*, request: HttpRequest | Request, reason: str) -> None:
    try:
        with transaction.atomic():
            event_record(
                event_type=EventType.TOKEN_REFUSED,
                payload={"reason": reason[:200], "path": request.path[:200]},
                address=_client_address(request),
            )
    except DatabaseError:
        logger.warning("could not record TOKEN_REFUSED: database unavailable")


def refresh_refused_record(*, reason: str, actor: User | None = None) -> None:
    """A refused refresh token is a refused token too (address and correlation come from the request)."""
    try:
        with transaction.atomic():
            event_record(
                event_type=EventType.TOKEN_REFUSED, actor=actor, payload={"reason": reason[:200], "token": "refresh"}
            )
    except DatabaseError:
        logger.warning("could not record TOKEN_REFUSED: database unavailable")


def permission_denied_record(*, request: HttpRequest | Request, required: list[str]) -> None:
    try:
        with transaction.atomic():
            event_record(
                event_type=EventType.PERMISSION_DENIED,
                actor=request.user,
                payload={"path": request.path[:200], "method": request.method, "required": required},
                address=_client_address(request),
            )
    except DatabaseError:
        logger.warning("could not record PERMISSION_DENIED: database unavailable")


def _apply_role(user: User, role: str) -> None:
    user.role = role
    user.is_staff = role in STAFF_ROLES or user.is_superuser
    user.save()
    user.groups.set([Group.objects.get(name=role)])


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    password: str,
    role: str = Role.TRADER,
    email: str = "",
    is_superuser: bool = False,
    first_name: str = "",
    last_name: str = "",
) -> User:
    user = User(
        username=username,
        email=email,
        is_superuser=is_superuser,
        first_name=first_name.strip()[:150],
        last_name=last_name.strip()[:150],
    )
    user.set_password(password)
    _apply_role(user, role)
    default_book_assign(user)  # a user created with no book can still order: MAIN, granted
    event_record(
        event_type=EventType.USER_CREATED,
        actor=actor,
        payload={
            "username": username,
            "role": role,
            "is_superuser": is_superuser,
            "user_id": user.pk,
            "first_name": user.first_name,
            "last_name": user.last_name,
        },
    )
    return user


USER_DETAIL_FIELDS = ("first_name", "last_name", "email")


@transaction.atomic
def user_details_set(*, actor: User | None, user: User, **details: str) -> User:
    """Change a user's names or e-mail; one USER_DETAILS_CHANGED event with the old and new values."""
    refuse_anonymous_stand_in(user)
    unknown = set(details) - set(USER_DETAIL_FIELDS)
    if unknown:
        raise ItirpError(f"Unknown user detail(s): {', '.join(sorted(unknown))}", code="invalid_detail")
    changed = {}
    for name, value in details.items():
        value = str(value).strip()[: 254 if name == "email" else 150]
        if getattr(user, name) != value:
            changed[name] = {"old": getattr(user, name), "new": value}
            setattr(user, name, value)
    if changed:
        user.save(update_fields=list(changed))
        event_record(
            event_type=EventType.USER_DETAILS_CHANGED,
            actor=actor,
            payload={"username": user.username, "user_id": user.pk, "changed": changed},
        )
    return user


@transaction.atomic
def user_set_role(*, actor: User | None, user: User, role: str) -> User:
    refuse_anonymous_stand_in(user)
    old = user.role
    if role not in Role.values:
        raise ItirpError(f"Unknown role {role!r}", code="invalid_role")
    _apply_role(user, role)
    if old != role:
        event_record(
            event_type=EventType.ROLE_CHANGED,
            actor=actor,
            payload={"username": user.username, "user_id": user.pk, "old_role": old, "new_role": role},
        )
    return user


@transaction.atomic
def user_deactivate(*, actor: User | None, user: User, reason: str = "") -> User:
    """Deactivate a user and end every session and token at once."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    _tokens_and_sessions_end(user)
    event_record(
        event_type=EventType.USER_DEACTIVATED,
        actor=actor,
        payload={"username": user.username, "user_id": user.pk, "reason": reason[:500]},
    )
    return user


@transaction.atomic
def user_reactivate(*, actor: User | None, user: User) -> User:
    refuse_anonymous_stand_in(user)
    user.is_active = True
    user.save(update_fields=["is_active"])
    event_record(
        event_type=EventType.USER_REACTIVATED, actor=actor, payload={"username": user.username, "user_id": user.pk}
    )
    return user


def _tokens_and_sessions_end(user: User) -> None:
    outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in outstanding], ignore_conflicts=True)
    _sessions_end(user)


@transaction.atomic
def user_set_password(*, actor: User | None, user: User, password: str) -> User:
    """Set a password checked by the configured validators. Every session and token of the user ends:
    whoever knew the old password is signed out everywhere. The event never holds the password."""
    refuse_anonymous_stand_in(user)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ItirpError(
            "Password refused", code="invalid_password", fields={"password": " ".join(exc.messages)}
        ) from exc
    user.set_password(password)
    user.save(update_fields=["password"])
    _tokens_and_sessions_end(user)
    event_record(
        event_type=EventType.PASSWORD_CHANGED,
        actor=actor,
        payload={"username": user.username, "user_id": user.pk, "by_self": getattr(actor, "pk", None) == user.pk},
    )
    return user


@transaction.atomic
def group_permissions_set(
    *, actor: User | None, group: Group, permissions: Iterable[Permission], created: bool = False
) -> Group:
    """Set which permissions a group (a role) holds; the API follows at once. Recorded with what was added
    and removed."""
    before = set(group.permissions.values_list("content_type__app_label", "codename"))
    group.permissions.set(permissions)
    after = set(group.permissions.values_list("content_type__app_label", "codename"))
    added, removed = sorted(after - before), sorted(before - after)
    if added or removed or created:
        event_record(
            event_type=EventType.GROUP_PERMISSIONS_CHANGED,
            actor=actor,
            payload={
                "group": group.name,
                "group_id": group.pk,
                "created": created,
                "permissions_added": [f"{a}.{c}" for a, c in added],
                "permissions_removed": [f"{a}.{c}" for a, c in removed],
            },
        )
    return group


def _sessions_end(user: User) -> None:
    uid = str(user.pk)
    stale = [
        s.pk
        for s in Session.objects.filter(expire_date__gt=timezone.now())
        if s.get_decoded().get("_auth_user_id") == uid
    ]
    Session.objects.filter(pk__in=stale).delete()
