"""Analytics routes under /api/v1/ (a trailing slash is accepted too)."""

from django.urls import re_path

from analytics import apis

urlpatterns = [
    re_path(r"^risk/var/?$", apis.VarApi.as_view(), name="risk-var"),
    re_path(r"^risk/stress/scenarios/?$", apis.StressScenariosApi.as_view(), name="risk-stress-scenarios"),
    re_path(r"^risk/stress/?$", apis.StressApi.as_view(), name="risk-stress"),
    re_path(r"^risk/pnl/?$", apis.PnlApi.as_view(), name="risk-pnl"),
]
