"""Instruments and market data (API.md, "Instruments and market data")."""

from importlib.util import find_spec

from django.urls import re_path

from market import data_apis

urlpatterns = [
    re_path(r"^market-data/?$", data_apis.MarketDataPushApi.as_view(), name="market-data-push"),
    # History first: the symbol pattern admits '/', so ".../AAPL/history" would otherwise be the quote of a
    # symbol "AAPL/history".
    re_path(
        r"^market-data/(?P<symbol>[A-Za-z0-9._/-]{1,20})/history/?$",
        data_apis.HistoryApi.as_view(),
        name="market-data-history",
    ),
    re_path(
        r"^market-data/(?P<symbol>[A-Za-z0-9._/-]{1,20})/?$", data_apis.QuoteApi.as_view(), name="market-data-quote"
    ),
]

# MERGE NOTE (issue 15): the instruments endpoints (market/apis.py) land from the instruments branch; until
# then this branch serves market data alone. On merge keep both route groups and drop this guard.
if find_spec("market.apis") is not None:
    from market import apis  # type: ignore[attr-defined]

    urlpatterns += [
        re_path(r"^instruments/?$", apis.InstrumentListApi.as_view(), name="instrument-list"),
        re_path(
            r"^instruments/(?P<symbol>[A-Za-z0-9._/-]{1,20})/?$",
            apis.InstrumentDetailApi.as_view(),
            name="instrument-detail",
        ),
    ]
