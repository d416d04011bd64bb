"""Orders back office: read-only order and fill views for risk and compliance; cancels go through order_cancel."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from accounts.permissions import signed_in_user
from core.admin import ReadOnlyAdminMixin
from core.exceptions import ItirpError
from orders import services
from orders.models import Fill, Order


class FillInline(admin.TabularInline):
    model = Fill
    extra = 0
    can_delete = False
    fields: ClassVar[tuple[str, ...]] = ("venue", "venue_execution_id", "quantity", "price", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Orders change only through services (submission, execution, cancel), never through a form."""

    list_display = ["created_at", "user", "symbol", "side", "quantity", "price", "status", "trail_link"]
    list_filter = ["status", "side"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    search_fields = ["=id"]
    search_help_text = "Order id, correlation id (exact), or a symbol"
    sortable_by = []
    show_full_result_count = False
    inlines = [FillInline]
    actions = ["cancel_orders"]
    readonly_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "correlation_id",
        "client_order_id",
        "user",
        "symbol",
        "side",
        "quantity",
        "price",
        "strategy",
        "status",
        "executed_quantity",
        "executed_price",
        "rejection_reason",
        "retry_count",
        "created_at",
        "updated_at",
        "trail_link",
    )
    fields = readonly_fields

    @admin.display(description="audit trail")
    def trail_link(self, obj: Order) -> str:
        url = reverse("admin:audit_event_trail") + f"?order_id={obj.pk}"
        return format_html('<a href="{}">trail</a>', url)

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
