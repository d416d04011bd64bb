"""guardian's AnonymousUser, made before accounts.anonymous existed, becomes inactive with no usable password."""

from django.contrib.auth.hashers import make_password
from django.db import migrations

ANONYMOUS = "AnonymousUser"


def forwards(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    User.objects.filter(username=ANONYMOUS).update(
        is_active=False, is_staff=False, is_superuser=False, password=make_password(None)
    )
    User.groups.through.objects.filter(user__username=ANONYMOUS).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_market_data_role")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
