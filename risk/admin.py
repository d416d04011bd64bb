"""Risk back office: the firm limits form (through risk_limits_update), positions, dashboard and kill switch."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.permissions import signed_in_user
from approvals.models import PendingChange
from audit.models import Event, EventType
from core import formats
from core.admin import ReadOnlyAdminMixin
from core.exceptions import InvalidInput
from risk import admin_history, admin_scopes, admin_views, history, services, store
from risk.models import LimitScope, Position, RiskLimits
from risk.scopes import FIRM
from risk.store import LIMIT_FIELDS

# Beside the four seed limits, the firm's VaR limit: measured by the scheduled risk-analytics run, not per order.
VAR_FIELD = "max_var"

USAGE_LABEL = {
    "max_position_size": "largest position",
    "max_daily_volume": "today's volume incl. open orders",
    "max_net_exposure": "net exposure",
    "max_gross_exposure": "gross exposure",
}


class RiskLimitsForm(forms.ModelForm):
    """The four firm limits, each with its current usage beside it, and a reason kept in the audit trail (required
    here; the v1 API keeps it optional). A limit set below its current usage asks to be confirmed first.
    Validation is risk.services.limits_validate, the same as the API's."""

    reason = forms.CharField(
        max_length=500,
        widget=forms.TextInput(attrs={"size": 60, "placeholder": "Why the change? (kept in the audit trail)"}),
        error_messages={"required": admin_scopes.REASON_REQUIRED},
    )

    class Meta:
        model = RiskLimits
        fields = [*LIMIT_FIELDS, VAR_FIELD]
        help_texts = {
            VAR_FIELD: "Value at Risk limit (reporting currency): the risk-analytics run measures it every minute and"
            " moves the firm over it to REDUCING; never checked per order. Blank = none."
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.below: list[dict[str, Any]] = []
        usages = admin_views.limit_usages()
        for name in [n for n in LIMIT_FIELDS if n in self.fields]:  # none for a view-only user
            u = usages[name]
            self.fields[name].help_text = format_html(
                '<span class="itirp-usage itirp-{}" data-usage="{}">'
                '<span class="itirp-bar"><span style="width:{}%"></span></span>'
                "Now: <strong>{}</strong> ({}) = <strong>{}%</strong> of the current limit</span>",
                u["level"],
                name,
                f"{u['width']:.1f}",
                formats.money(u["used"], settings.REPORTING_CURRENCY),
                USAGE_LABEL[name],
                f"{u['pct']:.1f}",
            )

    below_token = ""

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data["reason"]).strip()
        if not reason:
            raise forms.ValidationError(admin_scopes.REASON_REQUIRED)
        return reason

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        values = {name: cleaned[name] for name in LIMIT_FIELDS if cleaned.get(name) is not None}
        try:
            cleaned.update(services.limits_validate(values))
            if VAR_FIELD in self.fields:
                cleaned.update(services.scope_limits_validate(FIRM, {VAR_FIELD: cleaned.get(VAR_FIELD)}))
        except InvalidInput as exc:
            for field, message in exc.fields.items():
                self.add_error(field if field in self.fields else None, message)
            return cleaned
        usages = admin_views.limit_usages()
        changes = {n: v for n, v in values.items() if self.instance.pk is None or v != getattr(self.instance, n)}
        self.below = admin_views.below_usage(changes, {n: u["used"] for n, u in usages.items()}, USAGE_LABEL)
        if self.below:
            self.below_token = admin_views.below_usage_token(self.below)
            if self.data.get("confirm_below") != self.below_token:
                self.add_error(None, "A new limit is below current usage: confirm below, or change it.")
        return cleaned

    def _post_clean(self) -> None:
        # The service writes the row; the form only validates (no model save, no constraint check here).
        pass


@admin.register(RiskLimits)
class RiskLimitsAdmin(admin.ModelAdmin):
    form = RiskLimitsForm
    readonly_fields = ["updated_at_utc", "updated_by", "last_reason"]
    list_display = ["__str__", *LIMIT_FIELDS, "updated_at", "updated_by"]
    save_as_continue = False

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        last = ("Last change", {"fields": ["updated_at_utc", "updated_by", "last_reason"]})
        if not self.has_change_permission(request, obj):
            # Compliance reads the limits: no empty reason box (it showed "Reason: None"), the last change's instead.
            return [("Firm-wide limits", {"fields": [*LIMIT_FIELDS, VAR_FIELD]}), last]
        return [("Firm-wide limits", {"fields": [*LIMIT_FIELDS, VAR_FIELD]}), ("Change", {"fields": ["reason"]}), last]

    @admin.display(description="changed at")
    def updated_at_utc(self, obj: RiskLimits) -> str:
        return formats.utc_time(obj.updated_at)

    @admin.display(description="reason")
    def last_reason(self, obj: RiskLimits) -> str:
        event = (
            Event.objects.filter(event_type=EventType.LIMITS_CHANGED)
            .filter(history.scope_filter(FIRM))
            .order_by("-sequence")
            .first()
        )
        reason = event.payload.get("reason") if event is not None and isinstance(event.payload, dict) else None
        return str(reason) if reason else "–"

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        # Django's history lists admin LogEntry rows, which these changes never write (their record is the
        # LIMITS_CHANGED event): the HISTORY button opens the history from the events instead.
        return HttpResponseRedirect(reverse("admin:risk_scope_history", args=["firm"]))

    def get_queryset(self, request: HttpRequest) -> Any:
        # risk_limits_update changes the firm row; other scopes are not enforced yet, so not editable here.
        return super().get_queryset(request).filter(scope=LimitScope.FIRM, scope_key="")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and request.user.has_perm("risk.manage_limits")

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # One firm row: the list would be a needless click, so go straight to its form.
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)
        return HttpResponseRedirect(reverse("admin:risk_risklimits_change", args=[store.firm_limits().pk]))

    def save_model(self, request: HttpRequest, obj: RiskLimits, form: Any, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in LIMIT_FIELDS}
        actor, reason = signed_in_user(request), form.cleaned_data.get("reason", "")
        if VAR_FIELD in form.changed_data:
            # The same write with the VaR limit in it: one LIMITS_CHANGED event for the whole form.
            changes = {**values, VAR_FIELD: form.cleaned_data[VAR_FIELD]}
            updated = services.scope_limits_update(actor=actor, scope=FIRM, changes=changes, reason=reason)
        else:
            updated = services.risk_limits_update(actor=actor, reason=reason, **values)
        if isinstance(updated, PendingChange):
            obj.pending_change = updated  # type: ignore[attr-defined]  # read by response_change
            return
        obj.pk, obj.updated_at, obj.updated_by = updated.pk, updated.updated_at, updated.updated_by

    def response_change(self, request: HttpRequest, obj: RiskLimits) -> HttpResponse:
        if getattr(obj, "pending_change", None) is not None:
            messages.info(
                request,
                "Waiting for approval: the firm limits are unchanged until a second risk manager approves the raise.",
            )
            return HttpResponseRedirect(reverse("admin:risk_risklimits_change", args=[store.firm_limits().pk]))
        return super().response_change(request, obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        # The LIMITS_CHANGED event (old and new values, actor, reason) is the record of this change.
        return None

    def get_urls(self) -> list[Any]:
        site = self.admin_site
        extra = [
            path(
                "dashboard/",
                site.admin_view(lambda r: admin_views.dashboard_view(r, admin_site=site)),
                name="risk_dashboard",
            ),
            path(
                "kill-switch/",
                site.admin_view(lambda r: admin_views.kill_switch_view(r, admin_site=site)),
                name="risk_kill_switch",
            ),
            path(
                "scopes/",
                site.admin_view(lambda r: admin_scopes.scope_limits_list_view(r, admin_site=site)),
                name="risk_scope_limits_list",
            ),
            path(
                "history/<path:scope_text>/",
                site.admin_view(lambda r, scope_text: admin_history.scope_history_view(r, scope_text, admin_site=site)),
                name="risk_scope_history",
            ),
            path(
                "scopes/go/",
                site.admin_view(lambda r: admin_scopes.scope_limits_go_view(r, admin_site=site)),
                name="risk_scope_limits_go",
            ),
            # <path:> because a symbol scope may hold a slash (an FX pair such as symbol:EUR/USD).
            path(
                "scopes/<path:scope_text>/",
                site.admin_view(lambda r, scope_text: admin_scopes.scope_limits_view(r, scope_text, admin_site=site)),
                name="risk_scope_limits",
            ),
            path(
                "trading-states/",
                site.admin_view(lambda r: admin_scopes.trading_states_view(r, admin_site=site)),
                name="risk_trading_states",
            ),
            path(
                "grants/",
                site.admin_view(lambda r: admin_scopes.grants_view(r, admin_site=site)),
                name="risk_grants",
            ),
        ]
        return extra + super().get_urls()


def _num(text: str) -> str:
    return format_html('<span class="itirp-num">{}</span>', text)


@admin.register(Position)
class PositionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: positions change only through fills (risk.store.fill_book). Numbers as people read them."""

    list_display = [
        "symbol",
        "scope",
        "quantity_display",
        "average_price_display",
        "mark_price_display",
        "market_value_display",
        "realized_pnl_display",
        "open_buy_display",
        "open_sell_display",
        "updated_at_display",
    ]
    search_fields = ["=symbol"]
    show_full_result_count = False

    @admin.display(description="quantity", ordering="quantity")
    def quantity_display(self, obj: Position) -> str:
        return _num(formats.quantity(obj.quantity))

    @admin.display(description="average price", ordering="average_price")
    def average_price_display(self, obj: Position) -> str:
        return _num(formats.money(obj.average_price))

    @admin.display(description="mark", ordering="mark_price")
    def mark_price_display(self, obj: Position) -> str:
        return _num(formats.money(obj.mark_price))

    @admin.display(description="market value")
    def market_value_display(self, obj: Position) -> str:
        return _num(formats.money(obj.market_value, settings.REPORTING_CURRENCY))

    @admin.display(description="realised P&L", ordering="realized_pnl")
    def realized_pnl_display(self, obj: Position) -> str:
        return _num(formats.money(obj.realized_pnl, settings.REPORTING_CURRENCY))

    @admin.display(description="open buy qty")
    def open_buy_display(self, obj: Position) -> str:
        return _num(formats.quantity(obj.open_buy_quantity))

    @admin.display(description="open sell qty")
    def open_sell_display(self, obj: Position) -> str:
        return _num(formats.quantity(obj.open_sell_quantity))

    @admin.display(description="updated (UTC)", ordering="updated_at")
    def updated_at_display(self, obj: Position) -> str:
        return formats.utc_time(obj.updated_at)
