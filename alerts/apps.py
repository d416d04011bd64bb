"""The alerts app: rules over the audit trail, alert rows, and their push (stream, e-mail, webhooks)."""

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    default_auto_field = "django.db.models.BigAutoField"
