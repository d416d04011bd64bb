"""Input shapes of the alerts API (the output is alerts.services.alert_json, one shape for API and stream)."""

from __future__ import annotations

from rest_framework import serializers


class AlertsQuery(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    unacknowledged = serializers.BooleanField(required=False, default=False)


class AckIn(serializers.Serializer):
    note = serializers.CharField(max_length=1000, allow_blank=True, required=False, default="")
