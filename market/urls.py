"""Instruments and market data routes under /api/v1/ (API.md, "Instruments and market data"; a trailing slash
is accepted too). Symbols match lazily and may hold a slash ("EUR/USD" style), so a trailing slash is the
route's, never the symbol's, and a history route comes before its quote route."""

from django.urls import re_path

from market import apis, data_apis

SYMBOL = r"(?P<symbol>[A-Za-z0-9][A-Za-z0-9._/-]{0,19}?)"

urlpatterns = [
    re_path(r"^instruments/?$", apis.InstrumentListApi.as_view(), name="instrument-list"),
    re_path(rf"^instruments/{SYMBOL}/?$", apis.InstrumentDetailApi.as_view(), name="instrument-detail"),
    re_path(r"^market-data/?$", data_apis.MarketDataPushApi.as_view(), name="market-data-push"),
    re_path(rf"^market-data/{SYMBOL}/history/?$", data_apis.HistoryApi.as_view(), name="market-data-history"),
    re_path(rf"^market-data/{SYMBOL}/?$", data_apis.QuoteApi.as_view(), name="market-data-quote"),
]
