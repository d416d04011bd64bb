"""Desks and books back office: object permission pages (django-guardian) for who trades, views or manages
them. Creating goes through books.services, and so does every grant made on the permission pages: each is an
event (DESK_CREATED, BOOK_CREATED, GRANT_ADDED, GRANT_REVOKED)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from guardian.admin import AdminUserObjectPermissionsForm, GuardedModelAdmin

from books import services
from books.models import Book, Desk

# guardian codename -> the grant's name (books.services.GRANTS)
GRANT_OF = {
    codename.split(".", 1)[1]: permission
    for grants in services.GRANTS.values()
    for permission, codename in grants.items()
}


def _grants_form(actor: Any) -> type[AdminUserObjectPermissionsForm]:
    """The user permission form of an object, limited to its grants and writing through the services."""

    class GrantsForm(AdminUserObjectPermissionsForm):
        def get_obj_perms_field_choices(self) -> list[tuple[str, str]]:
            return [
                (codename, name) for codename, name in super().get_obj_perms_field_choices() if codename in GRANT_OF
            ]

        def save_obj_perms(self) -> None:
            obj: Book | Desk = self.obj  # type: ignore[assignment]  # guardian types it as any Model
            chosen = {str(c) for c in self.cleaned_data[self.get_obj_perms_field_name()]}
            held = {str(c) for c in self.get_obj_perms_field_initial()}  # codenames (guardian's get_perms)
            for codename in sorted(chosen - held):
                services.grant_add(actor=actor, obj=obj, user=self.user, permission=GRANT_OF[codename])
            for codename in sorted((held - chosen) & set(GRANT_OF)):
                services.grant_revoke(actor=actor, obj=obj, user=self.user, permission=GRANT_OF[codename])

    return GrantsForm


class _GrantedAdmin(GuardedModelAdmin):
    def get_obj_perms_manage_user_form(self, request: HttpRequest) -> type[AdminUserObjectPermissionsForm]:
        return _grants_form(request.user)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["code", "created_at"] if obj is not None else ["created_at"]


@admin.register(Desk)
class DeskAdmin(_GrantedAdmin):
    list_display = ["code", "name", "book_count", "created_at"]
    search_fields = ["code", "name"]
    fields = ["code", "name", "created_at"]

    @admin.display(description="books")
    def book_count(self, obj: Desk) -> int:
        return obj.books.count()

    def save_model(self, request: HttpRequest, obj: Desk, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
        else:
            created = services.desk_create(actor=request.user, code=obj.code, name=obj.name)
            obj.pk = created.pk


@admin.register(Book)
class BookAdmin(_GrantedAdmin):
    list_display = ["code", "name", "desk", "currency", "created_at"]
    list_filter = ["desk", "currency"]
    search_fields = ["code", "name"]
    list_select_related = ["desk"]
    fields = ["code", "name", "desk", "currency", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # a book belongs to one desk for its whole life (books.models)
        return ["code", "desk", "created_at"] if obj is not None else ["created_at"]

    def save_model(self, request: HttpRequest, obj: Book, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name", "currency"])
        else:
            created = services.book_create(
                actor=request.user, code=obj.code, name=obj.name, desk_code=obj.desk.code, currency=obj.currency
            )
            obj.pk = created.pk
