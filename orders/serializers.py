"""Input and output shapes of the orders API (API.md, Orders)."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from books import directory
from orders.models import OrderStatus
from risk.checks import Side

SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{0,19}$")
MAX_NUMBER = Decimal("1e12")


class PositiveDecimalField(serializers.DecimalField):
    """A number > 0 that fits NUMERIC(20, 8); NaN, Infinity, booleans and overflow are 400s."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=20, decimal_places=8, **kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if value <= 0:
            raise serializers.ValidationError("Must be greater than 0.")
        return value


class StrictCharField(serializers.CharField):
    """A JSON string: numbers, booleans, lists and objects are refused, not turned into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class OrderIn(serializers.Serializer):
    symbol = StrictCharField(min_length=1, max_length=20, trim_whitespace=True)
    side = serializers.ChoiceField(choices=[side.value for side in Side])
    quantity = PositiveDecimalField()
    price = PositiveDecimalField()
    strategy = StrictCharField(max_length=50, required=False, default="default", allow_blank=False)
    client_order_id = StrictCharField(max_length=64, required=False, allow_null=True, allow_blank=False, default=None)
    book = StrictCharField(
        max_length=32,
        required=False,
        allow_null=True,
        allow_blank=False,
        default=None,
        help_text="a book code; your default book if absent",
    )

    def validate_symbol(self, value: str) -> str:
        # Compatibility forms fold to one (full-width "ＡＡＰＬ" is "AAPL"); anything not plain ASCII
        # letters, digits and . _ / - is refused, so no two symbols can look alike.
        symbol = unicodedata.normalize("NFKC", value).strip().upper()
        if not SYMBOL_RE.fullmatch(symbol):
            raise serializers.ValidationError(
                "Symbol must be 1-20 characters: ASCII letters, digits, '.', '_', '/', '-', starting with a letter or digit."
            )
        return symbol


class ViolationOut(serializers.Serializer):
    code = serializers.CharField()
    scope = serializers.CharField(help_text="firm, desk:<code>, book:<code>, trader:<username> or symbol:<SYMBOL>")
    limit = serializers.CharField(allow_null=True, help_text="the limit in force (a number), or the trading state")
    projected = serializers.DecimalField(max_digits=38, decimal_places=8, allow_null=True)


@extend_schema_field(OpenApiTypes.STR)
class BookCodeField(serializers.Field):
    """An order's book code, from the process's book directory (no query per order)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="book_id", read_only=True, **kwargs)

    def to_representation(self, value: int) -> str:
        return directory.by_id(value).code


class OrderSubmitOut(serializers.Serializer):
    order_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    correlation_id = serializers.UUIDField()
    timestamp = serializers.DateTimeField()
    message = serializers.CharField()
    client_order_id = serializers.CharField(allow_null=True)
    book = serializers.CharField()
    violations = ViolationOut(many=True)


class OrderOut(serializers.Serializer):
    order_id = serializers.UUIDField(source="id")
    correlation_id = serializers.UUIDField()
    symbol = serializers.CharField()
    side = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=20, decimal_places=8)
    price = serializers.DecimalField(max_digits=20, decimal_places=8)
    status = serializers.CharField()
    book = BookCodeField()
    executed_quantity = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    executed_price = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    created_at = serializers.DateTimeField()
    rejection_reason = serializers.CharField(allow_null=True)
    strategy = serializers.CharField()
    client_order_id = serializers.CharField(allow_null=True)
    retry_count = serializers.IntegerField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["rejection_reason"] = data["rejection_reason"] or None
        return data


class OrderSummaryOut(serializers.Serializer):
    order_id = serializers.UUIDField(source="id")
    symbol = serializers.CharField()
    side = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=20, decimal_places=8)
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    client_order_id = serializers.CharField(allow_null=True)
    book = BookCodeField()


class OrderListOut(serializers.Serializer):
    orders = OrderSummaryOut(many=True)
    total = serializers.IntegerField()


class PageIn(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    offset = serializers.IntegerField(min_value=0, max_value=10_000_000, default=0)
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    symbol = serializers.CharField(max_length=20, required=False)
    client_order_id = serializers.CharField(max_length=64, required=False)


class CancelIn(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, default="", allow_blank=True)
