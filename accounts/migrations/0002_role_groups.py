"""Create one permission group per role with the permissions of API.md's role table (accounts/roles.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_role_groups(apps, schema_editor):
    # Permissions are normally made after migrate; make them now so the groups can hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    from accounts.roles import role_groups_ensure

    role_groups_ensure(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("orders", "0001_initial"),
        ("risk", "0001_initial"),
        ("audit", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
