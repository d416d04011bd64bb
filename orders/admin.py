"""Orders back office: read-only order and fill views for risk and compliance (fills, amendments, venue terms),
the internal venue's book depth; cancels go through order_cancel."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.permissions import signed_in_user
from core.admin import ReadOnlyAdminMixin
from core.exceptions import ItirpError
from orders import admin_views, selectors, services
from orders.admin_views import price_text, quantity_text, utc_text
from orders.models import Fill, Order, TimeInForce, VenueCode


class TimeInForceFilter(admin.SimpleListFilter):
    """The time in force by its codes (DAY, GTC, IOC, FOK): the choices' labels would read "Gtc", "Ioc"."""

    title = "time in force"
    parameter_name = "time_in_force__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(tif.value, tif.value) for tif in TimeInForce]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(time_in_force=self.value()) if self.value() else queryset


class FillInline(admin.TabularInline):
    model = Fill
    extra = 0
    can_delete = False
    classes = ["itirp-fills"]
    verbose_name_plural = "fills (oldest first)"
    fields: ClassVar[tuple[str, ...]] = ("filled_at", "venue", "venue_execution_id", "fill_quantity", "fill_price")
    readonly_fields = fields

    @admin.display(description="time (UTC)")
    def filled_at(self, obj: Fill) -> str:
        return utc_text(obj.created_at)

    @admin.display(description="quantity")
    def fill_quantity(self, obj: Fill) -> str:
        return quantity_text(obj.quantity)

    @admin.display(description="price")
    def fill_price(self, obj: Fill) -> str:
        return price_text(obj.price)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Fills have no permission of their own in the roles: who may see the order sees its fills.
        return request.user.has_perm("orders.view_order")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


ORDER_FIELDS: tuple[str, ...] = (
    "id",
    "client_order_id",
    "user",
    "book",
    "symbol",
    "side",
    "quantity_display",
    "price_display",
    "status",
    "rejection_reason",
)
VENUE_FIELDS: tuple[str, ...] = (
    "venue_display",
    "type_code",
    "tif",
    "leaves_display",
    "protection_display",
    "executed_display",
    "vwap_display",
)
TRACE_FIELDS: tuple[str, ...] = (
    "correlation_id",
    "strategy",
    "retry_count",
    "created_at_display",
    "updated_at_display",
    "trail_link",
)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Orders change only through services (submission, execution, cancel), never through a form."""

    list_display = [
        "created_short",
        "user",
        "symbol",
        "side",
        "quantity_display",
        "price_display",
        "venue_code",
        "type_code",
        "tif",
        "leaves_display",
        "status",
        "trail_link",
    ]
    list_filter = ["status", "venue", "order_type", TimeInForceFilter, "side"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    search_fields = ["=id"]
    search_help_text = "Order id, correlation id (exact), or a symbol"
    sortable_by = []
    show_full_result_count = False
    inlines = [FillInline]
    actions = ["cancel_orders"]
    fieldsets = [
        (None, {"fields": ORDER_FIELDS}),
        ("Venue and execution", {"fields": VENUE_FIELDS}),
        ("Amendments", {"fields": ("amendments",)}),
        ("Trace", {"fields": TRACE_FIELDS, "classes": ["collapse"]}),
    ]
    readonly_fields: ClassVar[tuple[str, ...]] = (*ORDER_FIELDS, *VENUE_FIELDS, "amendments", *TRACE_FIELDS)

    @admin.display(description="audit trail")
    def trail_link(self, obj: Order) -> str:
        url = reverse("admin:audit_event_trail") + f"?order_id={obj.pk}"
        return format_html('<a href="{}">trail</a>', url)

    @admin.display(description="quantity")
    def quantity_display(self, obj: Order) -> str:
        return quantity_text(obj.quantity)

    @admin.display(description="price")
    def price_display(self, obj: Order) -> str:
        return "market" if obj.order_type == "MARKET" else price_text(obj.price)

    # The codes, as traders and the API spell them (the choices' labels would read "Gtc", "Limit").
    @admin.display(description="venue")
    def venue_code(self, obj: Order) -> str:
        return obj.venue

    @admin.display(description="venue")
    def venue_display(self, obj: Order) -> str:
        if obj.venue != VenueCode.INTERNAL:
            return f"{obj.venue} ({obj.get_venue_display()})"
        url = reverse("admin:orders_book_depth") + f"?symbol={obj.symbol}"
        return format_html(
            '{} ({}) · <a href="{}">its book of {}</a>', obj.venue, obj.get_venue_display(), url, obj.symbol
        )

    @admin.display(description="type")
    def type_code(self, obj: Order) -> str:
        return obj.order_type

    @admin.display(description="TIF")
    def tif(self, obj: Order) -> str:
        return obj.time_in_force

    @admin.display(description="leaves")
    def leaves_display(self, obj: Order) -> str:
        return quantity_text(obj.leaves_quantity)

    @admin.display(description="protection price")
    def protection_display(self, obj: Order) -> str:
        return price_text(obj.protection_price)

    @admin.display(description="executed quantity")
    def executed_display(self, obj: Order) -> str:
        return quantity_text(obj.executed_quantity)

    @admin.display(description="executed price (VWAP of the fills)")
    def vwap_display(self, obj: Order) -> str:
        return price_text(obj.executed_price)

    @admin.display(description="created (UTC)", ordering="created_at")
    def created_short(self, obj: Order) -> str:
        return obj.created_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="created (UTC)")
    def created_at_display(self, obj: Order) -> str:
        return utc_text(obj.created_at)

    @admin.display(description="updated (UTC)")
    def updated_at_display(self, obj: Order) -> str:
        return utc_text(obj.updated_at)

    @admin.display(description="amendments")
    def amendments(self, obj: Order) -> str:
        rows = selectors.order_amendments(order_id=obj.pk)
        if not rows:
            return format_html('<span class="itirp-muted">{}</span>', "No amendments.")
        body = format_html_join(
            "",
            '<tr class="itirp-amend-{}"><td data-label="Requested">{}</td><td data-label="By">{}</td>'
            '<td data-label="Quantity">{} → {}</td><td data-label="Price">{} → {}</td>'
            '<td data-label="Outcome"><strong>{}</strong></td><td data-label="Why">{}</td></tr>',
            (
                (
                    row["outcome"].lower(),
                    utc_text(row["requested_at"]),
                    row["by"],
                    quantity_text(row["from"].get("quantity")),
                    quantity_text(row["to"].get("quantity")),
                    price_text(row["from"].get("price")),
                    price_text(row["to"].get("price")),
                    row["outcome"],
                    admin_views.amend_detail(row),
                )
                for row in rows
            ),
        )
        return format_html(
            '<table class="itirp-table itirp-amendments" id="itirp-amendments"><thead><tr><th>Requested (UTC)</th>'
            "<th>By</th><th>Quantity</th><th>Price</th><th>Outcome</th><th>Message and violations</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            body,
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # Twelve columns and the filters do not fit beside the app sidebar at 1280 px: the list goes without it
        # (the nav bar and the breadcrumbs still lead everywhere).
        return super().changelist_view(request, {**(extra_context or {}), "is_nav_sidebar_enabled": False})

    def get_urls(self) -> list[Any]:
        site = self.admin_site
        extra = [
            path(
                "book/",
                site.admin_view(lambda r: admin_views.book_depth_view(r, admin_site=site)),
                name="orders_book_depth",
            ),
        ]
        return extra + super().get_urls()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            uid = uuid.UUID(term)
        except ValueError:
            return queryset.filter(symbol=term.upper()), False
        return queryset.filter(id=uid) | queryset.filter(correlation_id=uid), False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.cancel_any_order")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Cancel selected orders (those not yet executing)", permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet) -> None:
        done, refused = 0, []
        for order_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                services.order_cancel(
                    actor=signed_in_user(request), order_id=order_id, reason=f"Cancelled by {request.user}"
                )
                done += 1
            except ItirpError as exc:
                refused.append(exc.message)
        if done:
            self.message_user(request, f"{done} order(s) cancelled.", messages.SUCCESS)
        for message in refused[:10]:
            self.message_user(request, message, messages.WARNING)
