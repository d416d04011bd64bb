"""Risk routes under /api/v1/ (a trailing slash is accepted too)."""

from django.urls import re_path

from risk import apis

urlpatterns = [
    re_path(r"^risk/metrics/?$", apis.MetricsApi.as_view(), name="risk-metrics"),
    re_path(r"^risk/positions/?$", apis.PositionsApi.as_view(), name="risk-positions"),
    re_path(r"^risk/limits/?$", apis.LimitsApi.as_view(), name="risk-limits"),
    re_path(r"^risk/kill-switch/?$", apis.KillSwitchApi.as_view(), name="risk-kill-switch"),
    re_path(r"^risk/limits/scopes/?$", apis.ScopeLimitsListApi.as_view(), name="risk-limits-scopes"),
    re_path(r"^risk/limits/(?P<scope>.+?)/?$", apis.ScopeLimitsApi.as_view(), name="risk-scope-limits"),
    re_path(r"^risk/trading-state/?$", apis.TradingStateApi.as_view(), name="risk-trading-state"),
]
