"""Input and output shapes of the risk API (API.md, Risk)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from risk.models import MONEY, TradingState


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
    # v1 additions: P&L at market, in the reporting currency.
    unrealized_pnl = serializers.DecimalField(**MONEY)
    realized_pnl = serializers.DecimalField(**MONEY)
    daily_pnl = serializers.DecimalField(**MONEY)


class PositionOut(serializers.Serializer):
    symbol = serializers.CharField()
    quantity = serializers.DecimalField(**MONEY)
    average_price = serializers.DecimalField(**MONEY)
    market_value = serializers.DecimalField(**MONEY)
    unrealized_pnl = serializers.DecimalField(**MONEY)
    realized_pnl = serializers.DecimalField(**MONEY)
    mark_price = serializers.DecimalField(**MONEY, allow_null=True)
    # v1 additions: valued at market (the mark is the market's last price, `mark_time` its time).
    exposure = serializers.DecimalField(**MONEY)
    daily_pnl = serializers.DecimalField(**MONEY)
    mark_time = serializers.DateTimeField(allow_null=True)


class PositionsOut(serializers.Serializer):
    positions = PositionOut(many=True)
    total_positions = serializers.IntegerField()


def _scope_limit(places: int = 2, **kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=30, decimal_places=places, allow_null=True, **kwargs)


class ScopeLimitsIn(serializers.Serializer):
    """Documents PUT/PATCH /risk/limits/{scope}: the limits to set, null clears one (risk.services validates)."""

    max_order_quantity = _scope_limit(8, required=False)
    max_order_value = _scope_limit(required=False)
    max_position_size = _scope_limit(required=False)
    max_daily_volume = _scope_limit(required=False)
    max_net_exposure = _scope_limit(required=False)
    max_gross_exposure = _scope_limit(required=False)
    max_daily_loss = _scope_limit(required=False)
    price_collar_pct = _scope_limit(4, required=False)
    max_var = _scope_limit(required=False, help_text="VaR limit: checked by the scheduled run, not per order")
    reason = serializers.CharField(max_length=500)


class ScopeLimitsOut(serializers.Serializer):
    scope = serializers.CharField()
    max_order_quantity = _scope_limit(8)
    max_order_value = _scope_limit()
    max_position_size = _scope_limit()
    max_daily_volume = _scope_limit()
    max_net_exposure = _scope_limit()
    max_gross_exposure = _scope_limit()
    max_daily_loss = _scope_limit()
    price_collar_pct = _scope_limit(4)
    max_var = _scope_limit()
    usage = serializers.DictField(child=serializers.DecimalField(**MONEY), help_text="{measure: value}")


class ScopesLimitsOut(serializers.Serializer):
    scopes = ScopeLimitsOut(many=True)


class TradingStateOut(serializers.Serializer):
    scope = serializers.CharField()
    state = serializers.ChoiceField(choices=TradingState.choices)
    reason = serializers.CharField()
    changed_by = serializers.CharField(allow_null=True)
    changed_at = serializers.DateTimeField(allow_null=True)


class TradingStatesOut(serializers.Serializer):
    states = TradingStateOut(many=True)


class TradingStateIn(serializers.Serializer):
    scope = serializers.CharField(max_length=200)
    state = serializers.ChoiceField(choices=TradingState.choices)
    reason = serializers.CharField(max_length=1000)


class TradingStateSetOut(serializers.Serializer):
    scope = serializers.CharField()
    state = serializers.ChoiceField(choices=TradingState.choices)
    previous = serializers.ChoiceField(choices=TradingState.choices)
    reason = serializers.CharField()
    cancelled_orders = serializers.IntegerField()
