"""The MARKET_DATA role (an external feed's account): its group, and its one permission given to admins too.

Existing role groups are otherwise left as an admin edited them (accounts.roles.role_groups_ensure); the
ADMIN group gains market.push_market_data here because the permission is new, not an admin's choice."""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models


def market_data_role(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    push = Permission.objects.get(content_type__app_label="market", codename="push_market_data")
    Group.objects.get_or_create(name="MARKET_DATA")[0].permissions.add(push)
    admins = Group.objects.filter(name="ADMIN").first()
    if admins is not None:
        admins.permissions.add(push)


def market_data_role_remove(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name="MARKET_DATA").delete()
    admins = Group.objects.filter(name="ADMIN").first()
    if admins is not None:
        admins.permissions.remove(*admins.permissions.filter(codename="push_market_data"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_default_book"),
        ("market", "0002_push_market_data_permission"),
    ]

    operations = [
        migrations.AlterField(
            model_name="user",
            name="role",
            field=models.CharField(
                choices=[
                    ("TRADER", "Trader"),
                    ("RISK_MANAGER", "Risk manager"),
                    ("COMPLIANCE", "Compliance"),
                    ("ADMIN", "Admin"),
                    ("MARKET_DATA", "Market data feed"),
                ],
                default="TRADER",
                max_length=20,
            ),
        ),
        migrations.RunPython(market_data_role, market_data_role_remove),
    ]
