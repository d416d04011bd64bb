"""The default alert rules (data: the admin edits them afterwards), and the role groups' alert permissions
(groups made before the alerts app existed; accounts/roles.py lists the same for groups made later)."""

from decimal import Decimal

from django.contrib.auth.management import create_permissions
from django.db import migrations

RULES = [
    # name, kind, event_type, threshold, count, window_seconds, severity
    ("Limit usage 80%", "LIMIT_USAGE", "", Decimal(80), None, None, "WARNING"),
    ("Limit usage 90%", "LIMIT_USAGE", "", Decimal(90), None, None, "HIGH"),
    ("Limit usage 100%", "LIMIT_USAGE", "", Decimal(100), None, None, "CRITICAL"),
    ("Burst of rejections", "REJECTION_BURST", "RISK_CHECK_FAILED", None, 5, 60, "HIGH"),
    ("Trading state changed", "TRADING_STATE", "TRADING_STATE_CHANGED", None, None, None, "CRITICAL"),
    ("Circuit breaker opened", "CIRCUIT_BREAKER", "CIRCUIT_BREAKER_OPENED", None, None, None, "HIGH"),
    ("Stale market data", "STALE_MARKET_DATA", "RISK_CHECK_FAILED", Decimal(60), None, None, "WARNING"),
    # VAR_LIMIT_BREACHED is added by the VaR work: the rule is keyed on the name and fires once it exists.
    ("VaR limit breached", "VAR_BREACH", "VAR_LIMIT_BREACHED", None, None, None, "CRITICAL"),
    ("Audit verification failed", "AUDIT_VERIFICATION", "AUDIT_VERIFIED", None, None, None, "CRITICAL"),
    ("Burst of failed logins", "LOGIN_FAILURE_BURST", "LOGIN_FAILED", None, 5, 300, "HIGH"),
]

SEE = ["receive_alerts", "view_alert", "view_alertrule"]
RISK = [*SEE, "change_alertrule", "view_webhookdelivery"]
ADMIN = [
    *RISK,
    "add_alertrule",
    "delete_alertrule",
    "view_alertwebhook",
    "add_alertwebhook",
    "change_alertwebhook",
    "delete_alertwebhook",
]
GRANTS = {"RISK_MANAGER": RISK, "COMPLIANCE": SEE, "ADMIN": ADMIN}


def seed(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    for name, kind, event_type, threshold, count, window, severity in RULES:
        AlertRule.objects.get_or_create(
            name=name,
            defaults={
                "kind": kind,
                "event_type": event_type,
                "threshold": threshold,
                "count": count,
                "window_seconds": window,
                "severity": severity,
            },
        )
    config = apps.get_app_config("alerts")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group = Group.objects.filter(name=name).first()
        if group is None:  # made later by accounts.roles.role_groups_ensure, with these already
            continue
        group.permissions.add(*Permission.objects.filter(content_type__app_label="alerts", codename__in=codenames))


def unseed(apps, schema_editor):
    apps.get_model("alerts", "AlertRule").objects.filter(name__in=[r[0] for r in RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
        ("accounts", "0002_role_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
