"""Instruments and market data (API.md, "Instruments and market data")."""

from django.urls import re_path

from market import apis, data_apis

urlpatterns = [
    re_path(r"^instruments/?$", apis.InstrumentListApi.as_view(), name="instrument-list"),
    re_path(
        r"^instruments/(?P<symbol>[A-Za-z0-9._/-]{1,20})/?$",
        apis.InstrumentDetailApi.as_view(),
        name="instrument-detail",
    ),
    re_path(r"^market-data/?$", data_apis.MarketDataPushApi.as_view(), name="market-data-push"),
    re_path(
        r"^market-data/(?P<symbol>[A-Za-z0-9._/-]{1,20})/?$", data_apis.QuoteApi.as_view(), name="market-data-quote"
    ),
    re_path(
        r"^market-data/(?P<symbol>[A-Za-z0-9._/-]{1,20})/history/?$",
        data_apis.HistoryApi.as_view(),
        name="market-data-history",
    ),
]
