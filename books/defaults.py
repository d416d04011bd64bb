"""Every user has a default book: MAIN (of desk EQ) unless one is set, granted for trading and viewing, and
its desk for viewing. Done when a user is created, whatever creates it (the API, the admin, createsuperuser,
a test's fixture), so a client of the v1 API, which knows nothing of books, orders as it always did."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from guardian.shortcuts import assign_perm

from books.models import DEFAULT_BOOK, DEFAULT_DESK, Book, Desk

ANONYMOUS = "AnonymousUser"  # guardian's stand-in for anonymous visitors: never a trader


def default_book() -> Book:
    """Book MAIN of desk EQ (made by books/0001; made again if a database was emptied since)."""
    book = Book.objects.select_related("desk").filter(code=DEFAULT_BOOK).first()
    if book is None:
        desk, _ = Desk.objects.get_or_create(code=DEFAULT_DESK, defaults={"name": "Equities"})
        book, _ = Book.objects.get_or_create(code=DEFAULT_BOOK, defaults={"name": "Main book", "desk": desk})
    return book


def default_book_assign(user: Any) -> None:
    if user.username == ANONYMOUS:
        return
    book = Book.objects.select_related("desk").filter(pk=user.default_book_id).first() if user.default_book_id else None
    if book is None:
        book = default_book()
        type(user).objects.filter(pk=user.pk).update(default_book=book)
        user.default_book = book
    assign_perm("books.trade_book", user, book)
    assign_perm("books.view_book", user, book)
    assign_perm("books.view_desk", user, book.desk)


def _on_user_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        default_book_assign(instance)


def connect() -> None:
    post_save.connect(_on_user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="books.default_book")
