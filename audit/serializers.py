"""Output and query shapes of the audit API (API.md, Audit)."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from audit.models import EventType


class EventOut(serializers.Serializer):
    event_id = serializers.UUIDField()
    sequence = serializers.IntegerField()
    event_type = serializers.CharField()
    correlation_id = serializers.UUIDField()
    causation_id = serializers.UUIDField(allow_null=True)
    order_id = serializers.UUIDField(allow_null=True)
    symbol = serializers.CharField(allow_blank=True)
    timestamp = serializers.DateTimeField()
    payload = serializers.JSONField()
    user_id = serializers.CharField(source="actor_username", allow_null=True)
    address = serializers.IPAddressField(allow_null=True)

    def to_representation(self, instance: object) -> dict:
        data = super().to_representation(instance)
        data["user_id"] = data["user_id"] or None
        return data


class EventsOut(serializers.Serializer):
    events = EventOut(many=True)
    total = serializers.IntegerField()


class CorrelationTrailOut(serializers.Serializer):
    correlation_id = serializers.UUIDField()
    events = EventOut(many=True)
    total_events = serializers.IntegerField()


class OrderTrailOut(serializers.Serializer):
    order_id = serializers.UUIDField()
    events = EventOut(many=True)
    total_events = serializers.IntegerField()


class EventsQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    offset = serializers.IntegerField(min_value=0, max_value=100_000_000, default=0)
    event_type = serializers.ChoiceField(choices=EventType.choices, required=False)
    user = serializers.CharField(max_length=150, required=False)
    user_id = serializers.CharField(max_length=150, required=False)
    order_id = serializers.UUIDField(required=False)
    correlation_id = serializers.UUIDField(required=False)
    symbol = serializers.CharField(max_length=20, required=False)
    client_order_id = serializers.CharField(max_length=64, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    start_time = serializers.DateTimeField(required=False)
    end_time = serializers.DateTimeField(required=False)


class ReportQuery(serializers.Serializer):
    """The period [since, until): until defaults to now, since to a day before until."""

    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def validate(self, attrs: dict) -> dict:
        for name in ("since", "until"):
            # found by schemathesis: the year 273 is a valid ISO time and no period any trail holds
            if name in attrs and not self.EARLIEST <= attrs[name] < dt.datetime(9999, 1, 1, tzinfo=dt.UTC):
                raise serializers.ValidationError({name: "must be a time from 1970 on (UTC)"})
        attrs.setdefault("until", timezone.now())
        attrs.setdefault("since", attrs["until"] - timedelta(days=1))
        if attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "until must be after since"})
        return attrs


class ReportOut(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    orders = serializers.DictField()
    rejections = serializers.ListField(child=serializers.DictField())
    refusals = serializers.DictField(child=serializers.IntegerField())
    fills = serializers.DictField()
    trading_state_periods = serializers.ListField(child=serializers.DictField())
    limit_changes = serializers.ListField(child=serializers.DictField())
    user_changes = serializers.ListField(child=serializers.DictField())
    verifications = serializers.ListField(child=serializers.DictField())
