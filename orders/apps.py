"""Orders app: orders, fills, the order state machine, submission, cancel and execution."""

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from core import metrics
        from orders.metrics import breaker_gauges  # models are loaded only once ready() runs

        metrics.register_scraped("breaker", breaker_gauges)
