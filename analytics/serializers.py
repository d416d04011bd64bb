"""Input and output shapes of the analytics API (API.md, Analytics)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from analytics.engine import METHODS
from analytics.selectors import OrderIntent
from risk.models import MONEY, Digits

MONEY2: Digits = {"max_digits": 30, "decimal_places": 2}
WITH_ORDER_HELP = (
    "A proposed order for the what-if: `SIDE:SYMBOL:QUANTITY` (e.g. `BUY:AAPL:100`) or a JSON object "
    '`{"side": "BUY", "symbol": "AAPL", "quantity": "100"}`. Its quantity is added to the scope\'s positions '
    "(to the book of a book scope) and the answer adds var_with_order and incremental_var."
)


def order_intent_parse(raw: str) -> OrderIntent:
    """`BUY:AAPL:100` or a JSON object: a side, a symbol, a positive quantity (ValidationError otherwise)."""
    text = raw.strip()
    try:
        if text.startswith("{"):
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError
            side, symbol, quantity = data.get("side"), data.get("symbol"), data.get("quantity")
        else:
            side, symbol, quantity = text.split(":")
        side, symbol = str(side).upper(), str(symbol).upper()
        number = Decimal(str(quantity))
    except (ValueError, ArithmeticError, TypeError):
        raise serializers.ValidationError({"with_order": WITH_ORDER_HELP}) from None
    if side not in ("BUY", "SELL"):
        raise serializers.ValidationError({"with_order": "side must be BUY or SELL"})
    if not number.is_finite() or number <= 0 or number >= Decimal("1e16"):
        raise serializers.ValidationError({"with_order": "quantity must be a positive number"})
    return OrderIntent(side, symbol, number)


class VarQuery(serializers.Serializer):
    scope = serializers.CharField(max_length=200, required=False, default="firm")
    method = serializers.ChoiceField(choices=METHODS, required=False, default="historical")
    confidence = serializers.FloatField(required=False, default=0.99, help_text="strictly between 0.5 and 0.9999")
    horizon_days = serializers.IntegerField(required=False, default=1, min_value=1, max_value=250)
    with_order = serializers.CharField(required=False, max_length=500, help_text=WITH_ORDER_HELP)

    def validate_confidence(self, value: float) -> float:
        if not 0.5 < value < 0.9999:
            raise serializers.ValidationError("Must be strictly between 0.5 and 0.9999.")
        return value

    def validate_with_order(self, value: str) -> OrderIntent:
        return order_intent_parse(value)


class VarOut(serializers.Serializer):
    scope = serializers.CharField()
    method = serializers.ChoiceField(choices=METHODS)
    confidence = serializers.FloatField()
    horizon_days = serializers.IntegerField()
    var = serializers.DecimalField(**MONEY2)
    expected_shortfall = serializers.DecimalField(**MONEY2)
    as_of = serializers.DateTimeField()
    observations = serializers.IntegerField(help_text="daily returns in the history used")
    paths = serializers.IntegerField(allow_null=True, help_text="Monte Carlo paths (null for the other methods)")
    currency = serializers.CharField()
    var_with_order = serializers.DecimalField(**MONEY2, required=False)
    incremental_var = serializers.DecimalField(**MONEY2, required=False)


class ScenarioOut(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    shocks = serializers.DictField(child=serializers.FloatField())


class ScenariosOut(serializers.Serializer):
    scenarios = ScenarioOut(many=True)


class StressIn(serializers.Serializer):
    scope = serializers.CharField(max_length=200, required=False, default="firm")
    scenario = serializers.CharField(max_length=64, required=False)
    shocks = serializers.DictField(
        required=False,
        help_text='e.g. {"asset_class:EQUITY": -0.10, "symbol:AAPL": -0.25, "currency:USD": 0.1, "vol": 0.1, "rate": 0.02}',
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("scenario" in attrs) == ("shocks" in attrs):
            raise serializers.ValidationError({"scenario": "Give a scenario name or shocks, one of the two."})
        return attrs


class StressPositionOut(serializers.Serializer):
    book = serializers.CharField(allow_null=True)
    symbol = serializers.CharField()
    quantity = serializers.DecimalField(**MONEY)
    pnl = serializers.DecimalField(**MONEY2)


class StressOut(serializers.Serializer):
    scope = serializers.CharField()
    scenario = serializers.CharField(allow_null=True)
    shocks = serializers.DictField(child=serializers.FloatField())
    pnl = serializers.DecimalField(**MONEY2)
    currency = serializers.CharField()
    as_of = serializers.DateTimeField()
    positions = StressPositionOut(many=True)


class PnlOut(serializers.Serializer):
    scope = serializers.CharField()
    realized_pnl = serializers.DecimalField(**MONEY)
    unrealized_pnl = serializers.DecimalField(**MONEY)
    daily_pnl = serializers.DecimalField(**MONEY)
    currency = serializers.CharField()
    as_of = serializers.DateTimeField()
