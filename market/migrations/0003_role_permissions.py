"""Give the role groups made before the market app (accounts/0002) their instrument permissions (accounts/roles.py):
risk managers and admins edit instruments, compliance reads them; all three read the latest prices and bars."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "RISK_MANAGER": ["view_instrument", "change_instrument", "view_mark", "view_bar"],
    "COMPLIANCE": ["view_instrument", "view_mark", "view_bar"],
    "ADMIN": ["view_instrument", "change_instrument", "view_mark", "view_bar"],
}


def grant(apps, schema_editor):
    # Permissions are normally made after migrate; make the market app's now so the groups can hold them.
    market = apps.get_app_config("market")
    market.models_module = True
    create_permissions(market, apps=apps, verbosity=0)
    market.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group = Group.objects.filter(name=name).first()
        if group is None:  # made later by accounts.roles.role_groups_ensure, with these already
            continue
        group.permissions.add(*Permission.objects.filter(content_type__app_label="market", codename__in=codenames))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        for group in Group.objects.filter(name=name):
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="market", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("market", "0002_push_market_data_permission"),
        ("accounts", "0002_role_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
