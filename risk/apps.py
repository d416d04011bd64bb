"""Risk app: limits, kill switch, positions, the pre-trade checks and their locking service."""

from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"
    verbose_name = "Risk"

    def ready(self) -> None:
        from core import metrics
        from risk.metrics import kill_switch_gauges  # models are loaded only once ready() runs

        metrics.register_scraped("database", kill_switch_gauges)
