"""Who sees and who changes which scope in the back office: desks by guardian grants, compliance reads all.

Admins see and manage everything; compliance sees everything and changes nothing here; a risk manager sees
the desks granted to them (manage_desk or view_desk, and those desks' books) and manages those with
manage_desk. The firm, trader and symbol scopes follow the v1 role matrix (risk.manage_limits).
"""

from __future__ import annotations

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from accounts.models import Role, User
from books.models import Book, Desk
from risk.scopes import Scope


def sees_all(user: User) -> bool:
    return user.is_superuser or user.role in (Role.ADMIN, Role.COMPLIANCE)


def manages_all(user: User) -> bool:
    return user.is_superuser or user.role == Role.ADMIN


def desks_visible(user: User) -> QuerySet[Desk]:
    if sees_all(user):
        return Desk.objects.all()
    return get_objects_for_user(
        user, ["books.manage_desk", "books.view_desk"], Desk, any_perm=True, accept_global_perms=False
    )


def desks_managed(user: User) -> QuerySet[Desk]:
    if manages_all(user):
        return Desk.objects.all()
    if user.role == Role.COMPLIANCE:  # compliance reads the back office, never changes it
        return Desk.objects.none()
    return get_objects_for_user(user, "books.manage_desk", Desk, accept_global_perms=False)


def books_visible(user: User) -> QuerySet[Book]:
    return Book.objects.filter(desk__in=desks_visible(user)).select_related("desk")


def _desk_of(scope: Scope) -> str | None:
    if scope.kind == "desk":
        return scope.key
    return Book.objects.filter(code=scope.key).values_list("desk__code", flat=True).first()


def scope_visible(user: User, scope: Scope) -> bool:
    if scope.kind in ("desk", "book"):
        desk = _desk_of(scope)
        return desk is not None and desks_visible(user).filter(code=desk).exists()
    return user.has_perm("risk.view_risk_metrics")


def scope_editable(user: User, scope: Scope) -> bool:
    if scope.kind in ("desk", "book"):
        desk = _desk_of(scope)
        return desk is not None and desks_managed(user).filter(code=desk).exists()
    return user.role != Role.COMPLIANCE and user.has_perm("risk.manage_limits")
