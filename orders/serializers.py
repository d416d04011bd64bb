"""Input and output shapes of the orders API (API.md, Orders)."""

from __future__ import annotations

import re
import threading
import unicodedata
from decimal import Decimal
from functools import cached_property
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

from books import directory
from orders.models import OrderStatus, OrderType, TimeInForce, VenueCode
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


class ThreadFieldsSerializer(serializers.Serializer):
    """A serializer whose field objects are made once per thread, not deep-copied from the declared ones for
    every instance (DRF's `get_fields`; 5 % of a submission's CPU for OrderIn's eleven fields).

    A field keeps no state of a validation, only its binding: its name (the same for every instance) and its
    parent, which is pointed at the new instance each time, as DRF's own binding would. A thread validates one
    request at a time, so no two instances share a field object at once. Only for serializers whose fields
    never read a context or a parent's data of their own (no nested serializers, no context defaults)."""

    _thread_fields = threading.local()

    @cached_property
    def fields(self) -> BindingDict:
        fields = BindingDict(self)
        made_here: dict[type, dict[str, serializers.Field]] = self._thread_fields.__dict__.setdefault("made", {})
        made = made_here.get(type(self))
        if made is None:  # this thread's first instance: DRF's own copy and binding
            for name, field in self.get_fields().items():
                fields[name] = field
            made_here[type(self)] = dict(fields.fields)
            return fields
        fields.fields = dict(made)
        for field in made.values():
            field.parent = self
        return fields


class OrderIn(ThreadFieldsSerializer):
    symbol = StrictCharField(min_length=1, max_length=20, trim_whitespace=True)
    side = serializers.ChoiceField(choices=[side.value for side in Side])
    quantity = PositiveDecimalField()
    price = PositiveDecimalField(
        required=False, help_text="the limit price; required for LIMIT orders, refused on MARKET orders"
    )
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
    venue = serializers.ChoiceField(
        choices=VenueCode.values,
        required=False,
        default=VenueCode.SIM,
        help_text="SIM (the simulated external venue, the default) or INTERNAL (the internal order book)",
    )
    order_type = serializers.ChoiceField(choices=OrderType.values, required=False, default=OrderType.LIMIT)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.values, required=False, default=TimeInForce.DAY)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A MARKET order takes no price: it is refused rather than ignored, so a client never believes a limit
        # protects an order that has none (the checks use the reference price and the collar instead).
        if attrs.get("order_type") == OrderType.MARKET:
            if "price" in attrs:
                raise serializers.ValidationError(
                    {"price": "A MARKET order has no price: leave it out, or send a LIMIT order to bound the price."}
                )
            attrs["price"] = None
        elif "price" not in attrs:
            raise serializers.ValidationError({"price": [self.fields["price"].error_messages["required"]]})
        return attrs

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


class FillOut(serializers.Serializer):
    fill_id = serializers.CharField(source="venue_execution_id", help_text="the venue's trade id")
    quantity = serializers.DecimalField(max_digits=20, decimal_places=8)
    price = serializers.DecimalField(max_digits=20, decimal_places=8)
    venue = serializers.CharField()
    timestamp = serializers.DateTimeField(source="created_at")


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
    venue = serializers.CharField()
    order_type = serializers.CharField()
    time_in_force = serializers.CharField()
    leaves_quantity = serializers.DecimalField(max_digits=20, decimal_places=8)
    protection_price = serializers.DecimalField(
        max_digits=20, decimal_places=8, allow_null=True, help_text="a MARKET order's worst acceptable price"
    )
    fills = FillOut(many=True, help_text="in the order they happened; executed_price is their VWAP")

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


class AmendIn(serializers.Serializer):
    quantity = PositiveDecimalField(required=False, help_text="the new total quantity (leaves = quantity - filled)")
    price = PositiveDecimalField(required=False, help_text="the new limit price")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give quantity and/or price.")
        return attrs


class AmendOut(OrderOut):
    message = serializers.CharField(help_text="the amend's decision")
    amend_status = serializers.ChoiceField(choices=["AMENDED", "REJECTED"])
    violations = ViolationOut(many=True)


class VenueOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField(help_text="EXTERNAL (simulated) or INTERNAL")
    circuit_breaker = serializers.CharField(allow_null=True, help_text="the breaker's state; null for INTERNAL")


class VenuesOut(serializers.Serializer):
    venues = VenueOut(many=True)


class LevelOut(serializers.Serializer):
    price = serializers.DecimalField(max_digits=20, decimal_places=8)
    quantity = serializers.DecimalField(max_digits=20, decimal_places=8)
    orders = serializers.IntegerField()


class InternalBookOut(serializers.Serializer):
    symbol = serializers.CharField()
    bids = LevelOut(many=True)
    asks = LevelOut(many=True)
    timestamp = serializers.DateTimeField()


class TradeOut(serializers.Serializer):
    price = serializers.DecimalField(max_digits=20, decimal_places=8)
    quantity = serializers.DecimalField(max_digits=20, decimal_places=8)
    timestamp = serializers.DateTimeField(source="created_at")
    aggressor_side = serializers.CharField()


class TradesOut(serializers.Serializer):
    symbol = serializers.CharField()
    trades = TradeOut(many=True)


class DepthIn(serializers.Serializer):
    depth = serializers.IntegerField(min_value=1, max_value=100, default=10)


class CancelIn(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, default="", allow_blank=True)
