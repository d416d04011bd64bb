"""The firm-wide limits row (the seed's defaults) and the risk-state row every decision locks."""

from django.db import migrations


def create_rows(apps, schema_editor):
    apps.get_model("risk", "RiskLimits").objects.get_or_create(scope="FIRM", scope_key="")
    apps.get_model("risk", "RiskState").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("risk", "0001_initial")]

    operations = [migrations.RunPython(create_rows, migrations.RunPython.noop)]
