"""Risk app: limits, kill switch, positions, the pre-trade checks and their locking service."""

from django.apps import AppConfig

from core import metrics


class RiskConfig(AppConfig):
    name = "risk"
    verbose_name = "Risk"

    def ready(self) -> None:
        from risk.metrics import kill_switch_gauges  # it reads models: importable once the apps are loaded

        metrics.register_scraped("database", kill_switch_gauges)
