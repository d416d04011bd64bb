"""Accounts app: users, roles, JWT login/refresh/logout."""

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_role_groups(sender: Any, **kwargs: Any) -> None:
    # After every migrate or flush (tests): missing role groups come back with their defaults.
    from django.contrib.auth.models import Group, Permission

    from accounts.roles import ROLE_PERMISSIONS, role_groups_ensure

    needed = {p.split(".")[1] for perms in ROLE_PERMISSIONS.values() for p in perms}
    if Permission.objects.filter(codename__in=needed).values("codename").distinct().count() == len(needed):
        role_groups_ensure(Group, Permission)


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and roles"

    def ready(self) -> None:
        post_migrate.connect(_ensure_role_groups, dispatch_uid="accounts.ensure_role_groups")
