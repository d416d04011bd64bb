"""Alerts back office: rules and webhooks edited through alerts.services (each change an event), alerts and
webhook deliveries read-only (acknowledging is the banner's, with its note)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.permissions import signed_in_user
from alerts import services
from alerts.models import Alert, AlertRule, AlertWebhook, WebhookDelivery
from core.admin import ReadOnlyAdminMixin


class _ConfigAdmin(admin.ModelAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.alert_config_save(actor=signed_in_user(request), row=obj, created=not change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.alert_config_delete(actor=signed_in_user(request), row=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for row in queryset:
            services.alert_config_delete(actor=signed_in_user(request), row=row)


@admin.register(AlertRule)
class AlertRuleAdmin(_ConfigAdmin):
    list_display = ["name", "kind", "event_type", "threshold", "count", "window_seconds", "severity", "enabled"]
    list_filter = ["kind", "enabled", "severity"]


@admin.register(AlertWebhook)
class AlertWebhookAdmin(_ConfigAdmin):
    list_display = ["name", "url", "min_severity", "enabled"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["timestamp", "severity", "kind", "scope", "message", "acknowledged_by", "acknowledged_at", "note"]
    list_filter = ["severity", "kind"]
    search_fields = ["scope", "message"]
    date_hierarchy = "timestamp"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "webhook", "alert", "attempt", "status_code", "ok", "error", "duration_ms"]
    list_filter = ["ok", "webhook"]
