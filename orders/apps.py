"""Orders app: orders, fills, the order state machine, submission, cancel and execution."""

from django.apps import AppConfig

from core import metrics


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from orders.metrics import breaker_gauges  # it reads models: importable once the apps are loaded

        metrics.register_scraped("breaker", breaker_gauges)
