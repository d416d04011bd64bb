"""Permission checks: API permission classes that check Django permissions (so editing a group in the admin
changes the API), and the signed-in user of a request that passed them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import User


def has_perms(*perms: str) -> type[BasePermission]:
    """A DRF permission class requiring every one of the given Django permissions."""

    class HasDjangoPerms(BasePermission):
        required = perms
        message = "Your role does not have permission to perform this action."

        def has_permission(self, request: Any, view: Any) -> bool:
            # A refusal is recorded as PERMISSION_DENIED by the one exception handler (itirp/exceptions.py).
            user = request.user
            return bool(user and user.is_authenticated and user.has_perms(perms))

    HasDjangoPerms.__name__ = "Has_" + "_".join(p.replace(".", "_") for p in perms)
    return HasDjangoPerms


def signed_in_user(request: HttpRequest | Request) -> User:
    """The user of a request that passed its permission checks (the admin site's, or has_perms): always a
    signed-in User there. The check makes that explicit: an anonymous request is refused, never recorded as
    the actor of a change."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user
