"""JWT authentication that also refuses revoked tokens, ended sessions and inactive users, in one query."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Exists, OuterRef
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import InvalidToken, TokenBackendExpiredToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, Token

from accounts.claims import SESSION_CLAIM
from accounts.models import RevokedAccessToken, User
from core.sql import Statement, column, run

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # a development dependency: used in annotations only

    class _Flags(TypedDict):
        token_revoked: bool
        session_ended: bool

    # The user, with whether the access token presented, or its session, was revoked.
    FlaggedUser: TypeAlias = WithAnnotations[User, _Flags]


class VerifiedOnceAccessToken(AccessToken):
    """simplejwt's access token (SIMPLE_JWT AUTH_TOKEN_CLASSES), its signature checked once per process.

    PyJWT's decode (base64 with a per-character alphabet check, JSON, HMAC, claims) ran on every request for the
    same bearer token: 4 % of a submission's CPU. A token that decoded and verified once is the same bytes
    under the same key the next time: its payload is kept (a bounded LRU of tokens that passed, never of
    those refused) and only what time changes is checked again, expiry as PyJWT checks it. Everything after
    the decode is unchanged: Token.verify (type, jti, exp) and the user, revocation and session query of
    get_user on every request, so a logout or a deactivation still refuses the next request."""

    def get_token_backend(self) -> TokenBackend:
        return _verified_once_backend()


class _VerifiedOnceBackend(TokenBackend):
    """simplejwt's TokenBackend whose verifying decode is remembered per token (VerifiedOnceAccessToken)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._verified = functools.lru_cache(maxsize=4096)(self._decode_verified)

    def _decode_verified(self, token: Token) -> dict[str, Any]:
        return super().decode(token, verify=True)  # raises, and so is never remembered, for a token refused

    def decode(self, token: Token, verify: bool = True) -> dict[str, Any]:
        if not verify:
            return super().decode(token, verify=False)
        payload = self._verified(token)
        exp = payload.get("exp")
        # PyJWT's own test of exp (exp <= now - leeway) and its error: the refusal of a first decode
        if isinstance(exp, int | float) and exp <= time.time() - self.get_leeway().total_seconds():
            raise TokenBackendExpiredToken("Token is expired")
        return dict(payload)  # a copy: a Token may change its payload


@functools.cache
def _verified_once_backend() -> _VerifiedOnceBackend:
    # simplejwt's own settings, as rest_framework_simplejwt.state builds its backend
    return _VerifiedOnceBackend(
        api_settings.ALGORITHM,
        api_settings.SIGNING_KEY,
        api_settings.VERIFYING_KEY,
        api_settings.AUDIENCE,
        api_settings.ISSUER,
        api_settings.JWK_URL,
        api_settings.LEEWAY,
        api_settings.JSON_ENCODER,
    )


class JWTAuthentication(SimpleJWTAuthentication):
    """Bearer tokens signed HS256. Expired, tampered, alg-none, wrong-key or revoked tokens get 401."""

    www_authenticate_realm = "api"

    def __init__(self, *args: Any, put_off_for: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        """`put_off_for` (POST /orders: its permission): the user, revocation, session and permission query put
        off to the decision. Where this process has read the user before and that reading holds those
        permissions, the user is that reading, marked `Unverified`: the submission's batch runs the same query
        under the risk lock, in the round trip it makes anyway, and a submission whose answer changed is not
        decided but authenticated again by the query (orders.apis.OrdersApi). A logout, a revocation, a
        deactivation or a role taken away thus still refuses the next order, and one read here saves a round
        trip and a transaction per submission. PostgreSQL only; elsewhere the query. One class for both uses,
        so the OpenAPI schema knows one bearer scheme."""
        super().__init__(*args, **kwargs)
        self.put_off_for = put_off_for

    # simplejwt types the user of both methods as a TypeVar that no argument binds, which no override matches.
    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, Token] | None:  # type: ignore[override]
        try:
            return super().authenticate(request)
        except (InvalidToken, TokenError, exceptions.AuthenticationFailed) as exc:
            from accounts import services

            services.token_refused_record(request=request, reason=_reason(exc))
            raise exceptions.AuthenticationFailed("Invalid or expired token", code="token_not_valid") from exc

    def get_user(self, validated_token: Token) -> User:  # type: ignore[override]
        if self.put_off_for is not None and settings.DB_IS_POSTGRES:
            read = _from_last_reading(validated_token, self.put_off_for)
            if read is not None:
                return read
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
            jti = validated_token[api_settings.JTI_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        # A token without a session claim cannot be tied to a refresh token: it is not one we issued.
        session = validated_token.get(SESSION_CLAIM)
        if not session:
            raise InvalidToken("Token carries no session")
        if settings.DB_IS_POSTGRES:
            user = _user_with_flags_and_perms(_pk(user_id), jti, session)
        else:
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


def _pk(user_id: object) -> Any:
    try:
        return get_user_model()._meta.pk.to_python(user_id)
    except ValidationError as exc:
        raise InvalidToken("Token contained no recognizable user identification") from exc


def _user_with_flags_and_perms(pk: Any, jti: str, session: str) -> FlaggedUser | None:
    """PostgreSQL: the user, whether this access token or its session was revoked, and every permission the
    user holds directly or through a group, in one round trip (this runs on every API request).

    The permissions fill the per-user cache ModelBackend would otherwise fill with two more queries on the
    request's first has_perm; like that cache they live for this request only. Plain SQL, not the ORM: the
    same query compiled by the ORM cost more CPU per request than it saved. A row that lets the user in is
    kept as the process's last reading of the user (`_last_read`, for JWTAuthentication's `put_off_for`)."""
    # Through core.sql: bound server-side and, run on every request, prepared once per connection (the
    # permission subqueries are planned once, not per request).
    rows = run([Statement(_auth_sql(), [jti, session, pk])])[0]
    if not rows:
        return None
    user = _flagged_user(rows[0])
    if user.is_active and not (user.token_revoked or user.session_ended):
        _last_read.keep(pk, rows[0])
    return user


def _flagged_user(row: tuple[Any, ...]) -> FlaggedUser:
    # The model from the row's own columns (Model.from_db, as the ORM does), without a RawQuerySet's
    # column mapping on every request; the three computed columns come last.
    fields = _user_columns()
    user = cast("FlaggedUser", get_user_model().from_db(connection.alias, fields, row[: len(fields)]))
    user.token_revoked, user.session_ended, perm_names = row[len(fields) :]
    if user.is_active:
        # ModelBackend's private per-user cache (untyped in the stubs), filled as ModelBackend itself does.
        user._perm_cache = {name for name in perm_names if name}  # type: ignore[attr-defined]
    return user


class _LastRead:
    """Per process, the authentication row last read for each user that it let in (bounded; emptied when full).
    Only a reading to be checked again later is taken from it (`put_off_for`)."""

    SIZE = 4096

    def __init__(self) -> None:
        self._rows: dict[Any, tuple[Any, ...]] = {}

    def keep(self, pk: Any, row: tuple[Any, ...]) -> None:
        if len(self._rows) >= self.SIZE:
            self._rows.clear()
        self._rows[pk] = row

    def get(self, pk: Any) -> tuple[Any, ...] | None:
        return self._rows.get(pk)

    def forget(self, pk: Any = None) -> None:
        if pk is None:
            self._rows.clear()
        else:
            self._rows.pop(pk, None)


_last_read = _LastRead()


def forget_last_read() -> None:
    """Every user's reading dropped (tests: a flushed database gives its ids to other users)."""
    _last_read.forget()


@dataclass(frozen=True)
class Unverified:
    """A user taken from the process's last reading (`put_off_for`): the query to run again, in the
    decision's transaction under its lock, and what it must still answer for the decision to stand."""

    pk: Any
    jti: str
    session: str
    row: tuple[Any, ...]

    @property
    def key(self) -> tuple[Any, str, str]:
        return (self.pk, self.jti, self.session)

    def statement(self) -> Statement:
        return Statement(_auth_sql(), [self.jti, self.session, self.pk])

    def holds(self, rows: Sequence[tuple[Any, ...]]) -> bool:
        """The same user row, this token and its session still not revoked, the same permissions (in any
        order: the query's array has none)."""
        if len(rows) != 1:
            return False
        flags = len(_user_columns()) + 2
        return rows[0][:flags] == self.row[:flags] and set(rows[0][flags]) == set(self.row[flags])

    def forget(self) -> None:
        _last_read.forget(self.pk)


def unverified(user: object) -> Unverified | None:
    """The check a user let in on a reading (`put_off_for`) still owes (None for a user read by the query)."""
    check = getattr(user, "unverified", None)
    return check if isinstance(check, Unverified) else None


def _from_last_reading(validated_token: Token, required: tuple[str, ...]) -> User | None:
    """The user as this process last read it, marked `Unverified`, if it has read the user and that reading holds
    `required` (JWTAuthentication with `put_off_for`); None: the query decides."""
    try:
        pk = _pk(validated_token[api_settings.USER_ID_CLAIM])
        jti = validated_token[api_settings.JTI_CLAIM]
    except KeyError:
        return None
    session = validated_token.get(SESSION_CLAIM)
    row = _last_read.get(pk) if jti and session else None
    if row is None:
        return None
    user = _flagged_user(row)
    if not (user.is_superuser or user.has_perms(required)):
        return None
    user.unverified = Unverified(pk, jti, session, row)  # type: ignore[attr-defined]
    return user


@functools.cache
def _user_columns() -> list[str]:
    return [field.attname for field in get_user_model()._meta.concrete_fields]


@functools.cache
def _auth_sql() -> str:
    user = get_user_model()
    user_perms, user_groups = user.user_permissions.through, user.groups.through
    table = {
        "user": user._meta.db_table,
        "revoked": RevokedAccessToken._meta.db_table,
        "blacklisted": BlacklistedToken._meta.db_table,
        "outstanding": OutstandingToken._meta.db_table,
        "perm": Permission._meta.db_table,
        "ct": ContentType._meta.db_table,
        "user_perms": user_perms._meta.db_table,
        "user_groups": user_groups._meta.db_table,
        "group_perms": Group.permissions.through._meta.db_table,
    }
    columns = ", ".join(f"u.{connection.ops.quote_name(column(field))}" for field in user._meta.concrete_fields)
    return (
        f"SELECT {columns}, "  # noqa: S608 - names from the models only; every value is a parameter
        f'EXISTS (SELECT 1 FROM "{table["revoked"]}" r WHERE r.jti = %s AND r.user_id = u.id) AS token_revoked, '
        f'EXISTS (SELECT 1 FROM "{table["blacklisted"]}" b JOIN "{table["outstanding"]}" o ON o.id = b.token_id '
        "WHERE o.jti = %s AND o.user_id = u.id) AS session_ended, "
        f"ARRAY (SELECT ct.app_label || '.' || p.codename FROM \"{table['perm']}\" p "
        f'JOIN "{table["ct"]}" ct ON ct.id = p.content_type_id WHERE p.id IN ('
        f'SELECT up.permission_id FROM "{table["user_perms"]}" up WHERE up.user_id = u.id UNION '
        f'SELECT gp.permission_id FROM "{table["group_perms"]}" gp JOIN "{table["user_groups"]}" ug '
        "ON ug.group_id = gp.group_id WHERE ug.user_id = u.id)) AS perm_names "
        f'FROM "{table["user"]}" u WHERE u.id = %s'
    )


def _reason(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict):
        return str(detail.get("detail", "invalid token"))
    return str(detail or exc)
