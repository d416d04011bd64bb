"""Alerts back office: rules and webhooks edited through alerts.services (each change an event), alerts and
webhook deliveries read-only (acknowledging is the banner's, with its note)."""

from __future__ import annotations

import datetime as dt
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
    list_display = ["name", "threshold", "count", "window_seconds", "severity", "dedup_seconds", "enabled"]
    list_filter = ["kind", "enabled", "severity"]


@admin.register(AlertWebhook)
class AlertWebhookAdmin(_ConfigAdmin):
    list_display = ["name", "url", "min_severity", "enabled"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["raised_at", "severity", "scope", "message", "acknowledged_by", "note"]
    list_filter = ["severity", "kind"]
    search_fields = ["scope", "message"]
    date_hierarchy = "timestamp"

    @admin.display(description="raised (UTC)", ordering="timestamp")
    def raised_at(self, obj: Alert) -> str:
        return f"{obj.timestamp.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "webhook", "alert", "attempt", "status_code", "ok", "error", "duration_ms"]
    list_filter = ["ok", "webhook"]
