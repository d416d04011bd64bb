"""Instruments back office: reference data edited through market.services (validated and audited like a
loaded file: INSTRUMENT_LISTED, INSTRUMENT_CHANGED), Restrict / Activate actions, and the latest prices and
bars to read. Risk managers edit instruments, compliance reads them (accounts/roles.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.permissions import signed_in_user
from core.admin import ReadOnlyAdminMixin
from core.exceptions import InvalidInput, ItirpError
from market import selectors, services
from market.models import Bar, Instrument, InstrumentStatus, Mark


class InstrumentForm(forms.ModelForm):
    """Validation is market.services' (the loader's), the same as a file's rows."""

    class Meta:
        model = Instrument
        fields = [*services.FIELDS]

    def row(self) -> dict[str, Any]:
        row = {name: value for name, value in self.cleaned_data.items() if name in services.FIELDS}
        if self.instance.pk is not None:
            # the fixed-for-life fields are read-only on change: the instrument keeps its own
            row.update({name: getattr(self.instance, name) for name in services.FIXED_FOR_LIFE if name not in row})
        return row

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        if not self.errors:
            try:
                services.instrument_rows_clean([self.row()])
            except InvalidInput as exc:
                for name, message in exc.fields.items():
                    self.add_error(name if name in self.fields else None, message)
        return cleaned

    def _post_clean(self) -> None:
        # The service writes the row; the form only validates (no model save, no constraint check here).
        pass


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    form = InstrumentForm
    list_display = [
        "symbol",
        "name",
        "asset_class",
        "currency",
        "status",
        "tick",
        "lot",
        "multiplier_shown",
        "reference_price",
    ]
    list_filter = ["asset_class", "status", "currency"]
    search_fields = ["symbol", "name"]
    actions = ["restrict_instruments", "activate_instruments"]
    fieldsets = [
        (None, {"fields": ["symbol", "name", "asset_class", "currency", "status"]}),
        ("Trading", {"fields": ["tick_size", "lot_size", "multiplier", "staleness_seconds"]}),
        ("Valuation", {"fields": ["volatility", "initial_price"]}),
        ("Futures and options", {"fields": ["expiry", "underlying", "strike", "option_right"]}),
        ("Last change", {"fields": ["updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Instrument]:
        return selectors.with_reference(super().get_queryset(request))

    @admin.display(description="reference price", ordering="reference_price")
    def reference_price(self, obj: Any) -> Any:
        return _plain(obj.reference_price)

    @admin.display(description="tick", ordering="tick_size")
    def tick(self, obj: Instrument) -> str:
        return _plain(obj.tick_size)

    @admin.display(description="lot", ordering="lot_size")
    def lot(self, obj: Instrument) -> str:
        return _plain(obj.lot_size)

    @admin.display(description="multiplier", ordering="multiplier")
    def multiplier_shown(self, obj: Instrument) -> str:
        return _plain(obj.multiplier)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Positions and reservations were valued with these: fixed for the instrument's life (market.models).
        return [*services.FIXED_FOR_LIFE, "updated_at"] if obj is not None else ["updated_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # orders, positions and events name instruments; RESTRICTED takes one out of trading

    def save_model(self, request: HttpRequest, obj: Instrument, form: Any, change: bool) -> None:
        row = form.row()
        services.instruments_load([row], actor=signed_in_user(request), source="admin")
        # the admin's messages, history and redirect name the object: make it the stored row
        saved = Instrument.objects.get(symbol=row["symbol"])
        for name in [*services.FIELDS, "pk", "updated_at"]:
            setattr(obj, name, getattr(saved, name))

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Instrument], status: str) -> None:
        done = 0
        for symbol in queryset.order_by("pk").values_list("symbol", flat=True):
            try:
                services.instrument_set_status(
                    symbol, status, actor=signed_in_user(request), reason=f"{status.lower()} in the back office"
                )
                done += 1
            except ItirpError as exc:
                self.message_user(request, f"{symbol}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} instrument(s) now {status}.", messages.SUCCESS)

    @admin.action(description="Restrict selected instruments (no new orders)", permissions=["change"])
    def restrict_instruments(self, request: HttpRequest, queryset: QuerySet[Instrument]) -> None:
        self._set_status(request, queryset, InstrumentStatus.RESTRICTED)

    @admin.action(description="Activate selected instruments", permissions=["change"])
    def activate_instruments(self, request: HttpRequest, queryset: QuerySet[Instrument]) -> None:
        self._set_status(request, queryset, InstrumentStatus.ACTIVE)


def _plain(number: Decimal | None) -> str:
    """A decimal column's value without its trailing zeros (0.0100000000 -> 0.01), in plain notation."""
    if number is None:
        return "–"
    return format(number.normalize(), "f")


@admin.register(Mark)
class MarkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The latest price of each instrument, as market.prices (the one writer) left it."""

    list_display = [
        "symbol",
        "last_shown",
        "bid_shown",
        "ask_shown",
        "time_shown",
        "source",
        "close_shown",
        "unit_shown",
    ]

    @admin.display(description="time (UTC)", ordering="timestamp")
    def time_shown(self, obj: Mark) -> str:
        return obj.timestamp.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="last", ordering="last")
    def last_shown(self, obj: Mark) -> str:
        return _plain(obj.last)

    @admin.display(description="bid")
    def bid_shown(self, obj: Mark) -> str:
        return _plain(obj.bid)

    @admin.display(description="ask")
    def ask_shown(self, obj: Mark) -> str:
        return _plain(obj.ask)

    @admin.display(description="previous close")
    def close_shown(self, obj: Mark) -> str:
        return _plain(obj.prev_close)

    @admin.display(description="unit value")
    def unit_shown(self, obj: Mark) -> str:
        return _plain(obj.unit_value)

    search_fields = ["symbol"]
    list_filter = ["source"]
    ordering = ["symbol"]


@admin.register(Bar)
class BarAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["symbol", "interval", "start", "open", "high", "low", "close"]
    list_filter = ["interval"]
    search_fields = ["=symbol"]
    search_help_text = "A symbol (exact)"
    ordering = ["-start"]
    show_full_result_count = False
