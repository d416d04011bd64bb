"""Alerts routes under /api/v1/ (a trailing slash is accepted too)."""

from django.urls import re_path

from alerts import apis

urlpatterns = [
    re_path(r"^alerts/?$", apis.AlertsApi.as_view(), name="alerts"),
    re_path(r"^alerts/stream/?$", apis.AlertStreamApi.as_view(), name="alerts-stream"),
    re_path(r"^alerts/(?P<alert_id>[0-9a-fA-F-]{36})/ack/?$", apis.AlertAckApi.as_view(), name="alerts-ack"),
]
