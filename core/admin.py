"""Admin building blocks shared by the apps' back-office pages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """A model admin that shows rows and never adds, changes or deletes them (no bulk delete action either:
    Django offers it only with the delete permission)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SuperuserOnlyAdminMixin:
    """A framework's own tables (beat schedules, token blacklists, login-attempt records): superusers only, whatever
    permissions a role group was given (an admin role may edit groups, and could otherwise grant itself these)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) and super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return bool(request.user.is_superuser) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and super().has_delete_permission(request, obj)  # type: ignore[misc]


def superuser_only(site: Any, app_labels: set[str], extra: dict[str, type] | None = None) -> None:
    """Re-register every admin of these apps with SuperuserOnlyAdminMixin in front (and `extra` mixins by model
    name, e.g. one that records changes), keeping each framework admin's own behaviour."""
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label not in app_labels:
            continue
        bases = (SuperuserOnlyAdminMixin, *([extra[model.__name__]] if extra and model.__name__ in extra else []))
        cls = type(f"SuperuserOnly{type(model_admin).__name__}", (*bases, type(model_admin)), {})
        site.unregister(model)
        site.register(model, cls)
