"""Market app: instruments as reference data, the latest prices and their history, valuation at market."""

from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "market"
    verbose_name = "Instruments and market data"
