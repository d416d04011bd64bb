"""Approvals app: four-eyes on risk controls (limit raises and releases of HALTED wait for a second risk manager)."""

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Four-eyes approvals"
    default_auto_field = "django.db.models.BigAutoField"
