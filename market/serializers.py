"""Output shapes of the instruments API (API.md, "Instruments and market data")."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from market.models import AssetClass, InstrumentStatus


def _decimal(**kwargs: Any) -> serializers.DecimalField:
    # Money and sizes are JSON numbers like the rest of the API (COERCE_DECIMAL_TO_STRING is off), exact to
    # the ten places the database keeps.
    return serializers.DecimalField(max_digits=30, decimal_places=10, **kwargs)


class InstrumentOut(serializers.Serializer):
    symbol = serializers.CharField()
    name = serializers.CharField()
    asset_class = serializers.ChoiceField(choices=AssetClass.choices)
    currency = serializers.CharField()
    tick_size = _decimal()
    lot_size = _decimal()
    multiplier = _decimal()
    status = serializers.ChoiceField(choices=InstrumentStatus.choices)
    reference_price = _decimal(allow_null=True, help_text="the latest price (null before the first)")
    reference_time = serializers.DateTimeField(allow_null=True)
    expiry = serializers.DateField(allow_null=True, help_text="futures and options")
    underlying = serializers.CharField(allow_null=True, help_text="options: the instrument they are on")
    strike = _decimal(allow_null=True, help_text="options")
    option_right = serializers.CharField(allow_null=True, help_text="options: CALL or PUT")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["underlying"] = data["underlying"] or None
        data["option_right"] = data["option_right"] or None
        return data


class InstrumentsOut(serializers.Serializer):
    instruments = InstrumentOut(many=True)
    total = serializers.IntegerField()
