"""The signed-in user of a request that passed its permission checks, typed as the user model."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User


def signed_in_user(request: HttpRequest | Request) -> User:
    """The user of a request that passed its permission checks (the admin site's, or has_perms): always a
    signed-in User there. The check makes that explicit: an anonymous request is refused, never recorded as
    the actor of a change."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user
