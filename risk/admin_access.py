"""Who sees and who changes which scope in the back office, on the API's rules (risk.access, books.selectors).

Limits and trading states of a desk or book: its managers (manage_desk), compliance and admin may look, the
managers and admin may change (risk.access). Compliance reads the back office and changes nothing in it, so
it never edits here even where its v1 role could over the API. Positions (the dashboard) and grants follow
view rights (books.selectors.desks_viewable: view_desk or manage_desk; everything for compliance and admin).
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Role, User
from books import selectors as book_selectors
from books.models import Book, Desk
from risk import access
from risk.scopes import Scope


def _reads_only(user: User) -> bool:
    return user.role == Role.COMPLIANCE and not user.is_superuser


def desks_visible(user: User) -> QuerySet[Desk]:
    """Desks whose positions and grants the user may see."""
    return book_selectors.desks_viewable(user)


def books_visible(user: User) -> QuerySet[Book]:
    return Book.objects.filter(desk__in=desks_visible(user)).select_related("desk").order_by("code")


def desks_managed(user: User) -> QuerySet[Desk]:
    """Desks whose limits and trading states the user may change here."""
    if _reads_only(user) or not user.has_perm(access.MANAGE_LIMITS):
        return Desk.objects.none()
    if user.is_superuser or user.role == Role.ADMIN:
        return Desk.objects.all()
    return book_selectors.desks_managed(user)


def desks_with_limits_visible(user: User) -> QuerySet[Desk]:
    """Desks whose limits and trading states the user may look at."""
    return Desk.objects.all() if book_selectors.sees_all(user) else desks_managed(user)


def scope_visible(user: User, scope: Scope) -> bool:
    """May look at a scope's limits and trading state: a desk or book as GET /risk/limits/{scope}; the firm,
    trader and symbol scopes as v1's risk pages (risk.view_risk_metrics)."""
    if scope.kind in ("desk", "book"):
        return access.can_view_scope(user, scope)
    return user.has_perm("risk.view_risk_metrics")


def scope_editable(user: User, scope: Scope) -> bool:
    return not _reads_only(user) and access.can_manage_scope(user, scope)
