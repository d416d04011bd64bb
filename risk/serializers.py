"""Input and output shapes of the risk API (API.md, Risk)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from risk.models import MONEY


def _limit(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=24, decimal_places=2, **kwargs)


class LimitsIn(serializers.Serializer):
    max_position_size = _limit()
    max_daily_volume = _limit()
    max_net_exposure = _limit()
    max_gross_exposure = _limit()
    kill_switch_enabled = serializers.BooleanField(required=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields) if isinstance(self.initial_data, dict) else set()
        if unknown:
            raise serializers.ValidationError({name: "Unknown field." for name in sorted(unknown)})
        return attrs


class LimitsOut(serializers.Serializer):
    max_position_size = _limit()
    max_daily_volume = _limit()
    max_net_exposure = _limit()
    max_gross_exposure = _limit()
    kill_switch_enabled = serializers.BooleanField()
    updated_at = serializers.DateTimeField()


class KillSwitchIn(serializers.Serializer):
    enabled = serializers.BooleanField()
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class KillSwitchReasonIn(serializers.Serializer):
    """The body beside `?enabled=`: an optional reason only."""

    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class KillSwitchOut(serializers.Serializer):
    kill_switch_enabled = serializers.BooleanField()
    message = serializers.CharField()
    timestamp = serializers.DateTimeField()
    cancelled_orders = serializers.IntegerField()


class MetricsOut(serializers.Serializer):
    net_exposure = serializers.DecimalField(**MONEY)
    gross_exposure = serializers.DecimalField(**MONEY)
    daily_volume = serializers.DecimalField(**MONEY)
    total_positions = serializers.IntegerField()
    largest_position = serializers.DecimalField(**MONEY)
    kill_switch_active = serializers.BooleanField()
    open_orders_notional = serializers.DecimalField(**MONEY)
    timestamp = serializers.DateTimeField()


class PositionOut(serializers.Serializer):
    symbol = serializers.CharField()
    quantity = serializers.DecimalField(**MONEY)
    average_price = serializers.DecimalField(**MONEY)
    market_value = serializers.DecimalField(**MONEY)
    unrealized_pnl = serializers.DecimalField(**MONEY)
    realized_pnl = serializers.DecimalField(**MONEY)
    mark_price = serializers.DecimalField(**MONEY, allow_null=True)


class PositionsOut(serializers.Serializer):
    positions = PositionOut(many=True)
    total_positions = serializers.IntegerField()
