"""Risk app: limits, kill switch, positions, the pre-trade checks and their locking service."""

from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"
    verbose_name = "Risk"
