"""Orders app: orders, fills, the order state machine, submission, cancel and execution."""

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"
