"""Desk and book read queries: what a user may view (django-guardian object permissions)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from books.models import Book, Desk

# Roles that see every desk and book (API.md "Desks and books": compliance and admin see everything). Books sit
# below accounts in the layers, so the role is read as the user's attribute, by value (accounts.models.Role).
SEE_ALL_ROLES = frozenset({"COMPLIANCE", "ADMIN"})


def sees_all(user: Any) -> bool:
    return bool(user.is_superuser or getattr(user, "role", None) in SEE_ALL_ROLES)


def books_viewable(user: Any) -> QuerySet[Book]:
    """The books a user may view: granted view_book or trade_book on them, or the books of a desk they manage
    (or every book, see sees_all). Viewing a desk alone (every user views their default book's) shows only the
    desk: a trader sees the books they are granted."""
    if sees_all(user):
        return Book.objects.select_related("desk").all()
    granted = get_objects_for_user(
        user, ["books.view_book", "books.trade_book"], klass=Book, any_perm=True, with_superuser=False
    )
    managed = get_objects_for_user(user, "books.manage_desk", klass=Desk, with_superuser=False)
    return (
        Book.objects.filter(Q(pk__in=granted.values("pk")) | Q(desk__in=managed.values("pk")))
        .select_related("desk")
        .order_by("code")
    )


def books_tradable(user: Any) -> QuerySet[Book]:
    """The books a user may submit orders in: granted trade_book (superusers: every book)."""
    return get_objects_for_user(user, "books.trade_book", klass=Book).select_related("desk").order_by("code")


def desks_viewable(user: Any) -> QuerySet[Desk]:
    """The desks a user may view: granted view_desk or manage_desk on them (or every desk, see sees_all)."""
    if sees_all(user):
        return Desk.objects.all()
    return get_objects_for_user(
        user, ["books.view_desk", "books.manage_desk"], klass=Desk, any_perm=True, with_superuser=False
    ).order_by("code")


def desks_managed(user: Any) -> QuerySet[Desk]:
    """The desks whose limits and trading states a user may manage (granted manage_desk; superusers: all)."""
    return get_objects_for_user(user, "books.manage_desk", klass=Desk).order_by("code")
