"""Who may manage or view a scope's limits and trading state (API.md "Scoped limits and trading states").

The firm, `trader:` and `symbol:` scopes: anyone whose role may manage limits (v1's matrix, risk.manage_limits).
A `desk:` scope and its books' `book:` scopes: those of them granted manage_desk on that desk (django-guardian),
and the admin role and superusers always. Compliance and admin may read every scope.
"""

from __future__ import annotations

from collections.abc import Mapping

from accounts.models import Role, User
from books.models import Book, Desk
from books.selectors import books_viewable, desks_viewable
from core.exceptions import InvalidInput
from risk.scopes import Scope, ScopeError

MANAGE_LIMITS = "risk.manage_limits"
MANAGE_DESK = "books.manage_desk"


def scope_parse(text: str) -> Scope:
    """A scope that names something that exists (400 otherwise): a desk, a book, a user; any well-formed symbol."""
    try:
        scope = Scope.parse(text)
    except ScopeError as exc:
        raise InvalidInput(str(exc), code="invalid_scope", fields={"scope": str(exc)}) from exc
    scope_require(scope)
    return scope


def scope_require(scope: Scope) -> None:
    exists = {
        "desk": lambda key: Desk.objects.filter(code=key).exists(),
        "book": lambda key: Book.objects.filter(code=key).exists(),
        "trader": lambda key: User.objects.filter(username=key).exists(),
    }.get(scope.kind)
    if exists is not None and not exists(scope.key):
        message = f"Unknown scope {scope}: no {scope.kind} {scope.key!r}"
        raise InvalidInput(message, code="unknown_scope", fields={"scope": message})


def _always(user: User) -> bool:
    return bool(user.is_superuser or user.role == Role.ADMIN)


def scope_desk(scope: Scope) -> Desk | None:
    """The desk whose grant governs a desk: or book: scope (None for the others, or if it does not exist)."""
    if scope.kind == "desk":
        return Desk.objects.filter(code=scope.key).first()
    if scope.kind == "book":
        book = Book.objects.select_related("desk").filter(code=scope.key).first()
        return book.desk if book is not None else None
    return None


def can_manage_scope(user: User, scope: Scope) -> bool:
    if not user.is_authenticated or not user.has_perm(MANAGE_LIMITS):
        return False
    if scope.kind in ("firm", "trader", "symbol"):
        return True
    if _always(user):
        return True
    desk = scope_desk(scope)
    return desk is not None and user.has_perm(MANAGE_DESK, desk)


def can_view_scope(user: User, scope: Scope) -> bool:
    """Read a scope's limits: its managers, compliance and admin."""
    if user.is_authenticated and (user.is_superuser or user.role in (Role.COMPLIANCE, Role.ADMIN)):
        return True
    return can_manage_scope(user, scope)


FILTERS = ("book", "desk", "trader", "symbol")


def filter_scopes(params: Mapping[str, str], kinds: tuple[str, ...] = FILTERS) -> list[Scope]:
    """The scopes named by a list's ?book= ?desk= ?trader= ?symbol= filters: well-formed and existing (400)."""
    scopes = []
    for kind in kinds:
        value = params.get(kind)
        if value is None:
            continue
        try:
            scope = Scope.parse(f"{kind}:{value}")
        except ScopeError as exc:
            raise InvalidInput(str(exc), code="invalid_scope", fields={kind: str(exc)}) from exc
        scope_require(scope)
        scopes.append(scope)
    return scopes


def can_view_figures(user: User, scope: Scope) -> bool:
    """May a user (who may view risk figures or orders at all) see this scope's positions, metrics or orders:
    a book or a desk they may view, themselves or any trader if their role sees every order; the firm and any
    symbol."""
    if scope.kind == "book":
        return books_viewable(user).filter(code=scope.key).exists()
    if scope.kind == "desk":
        return desks_viewable(user).filter(code=scope.key).exists()
    if scope.kind == "trader":
        return scope.key == user.username or user.has_perm("orders.view_all_orders")
    return True
