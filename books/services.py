"""Use-cases that write for desks and books: creating them, granting and revoking who may trade, view or manage
them (django-guardian object permissions), and every user's default book. Each records its event.

Books sit below accounts in the layers, so the user is typed by the auth contract (AbstractBaseUser), never by
accounts.models; accounts.services.user_create calls default_book_assign for every new user.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, remove_perm

from audit.models import EventType
from audit.services import event_record
from books.models import DEFAULT_BOOK, DEFAULT_DESK, Book, Desk
from core.exceptions import InvalidInput, NotFound

# What a grant's `permission` names, per kind of object: the guardian codename it gives.
GRANTS: dict[type[Book] | type[Desk], dict[str, str]] = {
    Book: {"trade": "books.trade_book", "view": "books.view_book"},
    Desk: {"manage": "books.manage_desk", "view": "books.view_desk"},
}


def _validated(obj: Desk | Book, *, exclude: list[str] | None = None) -> None:
    """The model's validators (code pattern, currency), with a duplicate code a 400 like any other."""
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        fields = {name: " ".join(messages) for name, messages in exc.message_dict.items()}
        raise InvalidInput(f"Invalid {type(obj).__name__.lower()}", code="invalid", fields=fields) from exc


@transaction.atomic
def desk_create(*, actor: Any, code: str, name: str) -> Desk:
    desk = Desk(code=code, name=name)
    _validated(desk)
    try:
        with transaction.atomic():
            desk.save()
    except IntegrityError as exc:  # a concurrent create of the same code
        raise InvalidInput("Invalid desk", fields={"code": "Desk with this code already exists."}) from exc
    event_record(
        event_type=EventType.DESK_CREATED,
        actor=actor,
        payload={"desk": desk.code, "name": desk.name, "desk_id": desk.pk},
    )
    return desk


@transaction.atomic
def book_create(*, actor: Any, code: str, name: str, desk_code: str, currency: str = "USD") -> Book:
    desk = Desk.objects.filter(code=desk_code).first()
    if desk is None:
        raise InvalidInput("Invalid book", fields={"desk": f"No desk {desk_code!r}."})
    book = Book(code=code, name=name, desk=desk, currency=currency)
    _validated(book)
    try:
        with transaction.atomic():
            book.save()
    except IntegrityError as exc:
        raise InvalidInput("Invalid book", fields={"code": "Book with this code already exists."}) from exc
    event_record(
        event_type=EventType.BOOK_CREATED,
        actor=actor,
        payload={
            "book": book.code,
            "name": book.name,
            "desk": desk.code,
            "currency": book.currency,
            "book_id": book.pk,
        },
    )
    return book


def _grant_permission(obj: Book | Desk, permission: str) -> str:
    allowed = GRANTS[type(obj)]
    if permission not in allowed:
        kind = type(obj).__name__.lower()
        raise InvalidInput(
            f"Invalid grant on a {kind}",
            code="invalid_grant",
            fields={"permission": f"Use one of {', '.join(sorted(allowed))} on a {kind}."},
        )
    return allowed[permission]


def _grant_payload(obj: Book | Desk, user: Any, permission: str, codename: str) -> dict[str, Any]:
    return {
        "object": f"{type(obj).__name__.lower()}:{obj.code}",
        "username": user.username,
        "user_id": user.pk,
        "permission": permission,
        "codename": codename,
    }


@transaction.atomic
def grant_add(*, actor: Any, obj: Book | Desk, user: Any, permission: str) -> None:
    """Let `user` trade / view a book, or manage / view a desk (GRANT_ADDED; granting twice is harmless)."""
    codename = _grant_permission(obj, permission)
    assign_perm(codename, user, obj)
    event_record(event_type=EventType.GRANT_ADDED, actor=actor, payload=_grant_payload(obj, user, permission, codename))


@transaction.atomic
def grant_revoke(*, actor: Any, obj: Book | Desk, user: Any, permission: str) -> None:
    """Take a grant back (GRANT_REVOKED). A grant the user does not hold is a 404: nothing to revoke."""
    codename = _grant_permission(obj, permission)
    if not _holds_directly(user, obj, codename):
        raise NotFound(f"{user.username} holds no {permission} grant on {obj.code}")
    remove_perm(codename, user, obj)
    event_record(
        event_type=EventType.GRANT_REVOKED, actor=actor, payload=_grant_payload(obj, user, permission, codename)
    )


def _holds_directly(user: Any, obj: Book | Desk, codename: str) -> bool:
    """A grant of this user on this object (not a superuser's implicit all, nor a group's)."""
    return UserObjectPermission.objects.filter(
        user=user,
        permission__codename=codename.split(".", 1)[1],
        content_type=ContentType.objects.get_for_model(obj),
        object_pk=str(obj.pk),
    ).exists()


@transaction.atomic
def default_book_assign(user: Any) -> Book:
    """Give a user a default book (MAIN if none is set) they may trade and view, and view of its desk: a user
    created over the v1 API orders without naming a book. No event: the caller's (USER_CREATED) covers it."""
    book = user.default_book
    if book is None:
        book = Book.objects.select_related("desk").filter(code=DEFAULT_BOOK).first()
        if book is None:  # a database whose demo desk and book were removed: recreate them
            desk, _ = Desk.objects.get_or_create(code=DEFAULT_DESK, defaults={"name": "Equities"})
            book, _ = Book.objects.get_or_create(code=DEFAULT_BOOK, defaults={"name": "Main book", "desk": desk})
        user.default_book = book
        user.save(update_fields=["default_book"])
    assign_perm("books.trade_book", user, book)
    assign_perm("books.view_book", user, book)
    assign_perm("books.view_desk", user, book.desk)
    return book
