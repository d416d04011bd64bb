"""Analytics app: VaR and expected shortfall by three methods, stress scenarios, P&L by scope, the VaR limit."""

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Risk analytics"
