"""Instruments routes under /api/v1/ (API.md, "Instruments and market data"; a trailing slash is accepted too)."""

from django.urls import re_path

from market import apis

urlpatterns = [
    # The symbol matches lazily, so a trailing slash is the route's, never the symbol's ("EUR/USD" style
    # symbols may hold a slash).
    re_path(r"^instruments/?$", apis.InstrumentListApi.as_view(), name="instrument-list"),
    re_path(
        r"^instruments/(?P<symbol>[A-Za-z0-9][A-Za-z0-9._/-]{0,19}?)/?$",
        apis.InstrumentDetailApi.as_view(),
        name="instrument-detail",
    ),
]
