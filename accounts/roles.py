"""The default permissions of each role: API.md's role table as Django permission codenames."""

from __future__ import annotations

from typing import Any

from accounts.models import Role

TRADING = ["orders.submit_order", "orders.view_order", "risk.view_risk_metrics"]
RISK_CONTROL = ["risk.manage_limits", "risk.toggle_kill_switch", "orders.view_all_orders", "orders.cancel_any_order"]
AUDIT = ["audit.view_audit_trail", "audit.export_audit"]
MARKET_DATA = ["market.push_market_data"]
# Alerts (the alerts app): who receives and acknowledges them, and who edits rules and webhooks in the admin.
_ALERTS_SEE = ["alerts.receive_alerts", "alerts.view_alert", "alerts.view_alertrule"]
_ALERTS_RISK = [*_ALERTS_SEE, "alerts.change_alertrule", "alerts.view_webhookdelivery"]
_ALERTS_ADMIN = [
    *_ALERTS_RISK,
    "alerts.add_alertrule",
    "alerts.delete_alertrule",
    "alerts.view_alertwebhook",
    "alerts.add_alertwebhook",
    "alerts.change_alertwebhook",
    "alerts.delete_alertwebhook",
]

# Admin-site model permissions (what each role sees in the back office).
# Instruments: risk managers edit the reference data (status, ticks, lots), compliance reads it; both read the
# latest prices and bars. Groups made before the market app get these from market/migrations/0002.
_MARKET_VIEW = ["market.view_instrument", "market.view_mark", "market.view_bar"]
_RISK_ADMIN = [
    "risk.view_risklimits",
    "risk.change_risklimits",
    "risk.view_position",
    "orders.view_order",
    *_MARKET_VIEW,
    "market.change_instrument",
]
_COMPLIANCE_ADMIN = [
    "audit.view_event",
    "orders.view_order",
    "risk.view_position",
    "risk.view_risklimits",
    *_MARKET_VIEW,
]
_USER_ADMIN = [
    "accounts.view_user",
    "accounts.add_user",
    "accounts.change_user",
    "auth.view_group",
    "auth.change_group",
    "auth.add_group",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.TRADER: TRADING,
    Role.RISK_MANAGER: TRADING + RISK_CONTROL + _RISK_ADMIN + _ALERTS_RISK,
    Role.COMPLIANCE: TRADING + RISK_CONTROL + AUDIT + _COMPLIANCE_ADMIN + _ALERTS_SEE,
    Role.ADMIN: TRADING
    + RISK_CONTROL
    + AUDIT
    + MARKET_DATA
    + _RISK_ADMIN
    + _COMPLIANCE_ADMIN
    + _USER_ADMIN
    + _ALERTS_ADMIN,
    # An external feed's account: pushes prices (POST /market-data), reads like any authenticated user.
    Role.MARKET_DATA: MARKET_DATA,
}

# Apps whose permissions may not exist yet when accounts' migration makes the groups (see role_groups_ensure).
MIGRATED_LATER = {"market", "alerts"}

# Roles that may sign in to the admin site (is_staff follows the role).
STAFF_ROLES = {Role.RISK_MANAGER, Role.COMPLIANCE, Role.ADMIN}


def role_groups_ensure(group_model: Any, permission_model: Any) -> None:
    """Create each missing role group with its default permissions. Existing groups are left as an
    admin edited them: defaults are where a role starts, not a setting that overrides the admin.

    A permission of an app whose tables are not migrated yet (accounts' 0002 runs before market's 0001 on a
    fresh database) does not exist yet: that app's own migration gives it to the groups (market/0002)."""
    for role, perms in ROLE_PERMISSIONS.items():
        group, created = group_model.objects.get_or_create(name=str(role))
        if not created:
            continue
        for perm in perms:
            app_label, codename = perm.split(".")
            found = permission_model.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if found is None:
                if app_label in MIGRATED_LATER:
                    continue
                raise permission_model.DoesNotExist(f"no permission {perm}")
            group.permissions.add(found)
