"""Back office of analytics: the VaR snapshots (read-only) and, under them, the risk-analytics page per scope."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import path

from analytics import admin_views
from analytics.models import VarSnapshot
from core.admin import ReadOnlyAdminMixin


@admin.register(VarSnapshot)
class VarSnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each scheduled run's figures per scope (analytics.services.var_limits_check); written only by it."""

    list_display = [
        "taken_at",
        "scope",
        "method",
        "confidence",
        "horizon_days",
        "var",
        "expected_shortfall",
        "max_var",
        "breached",
    ]
    list_filter = ["breached", "method"]
    search_fields = ["=scope"]
    date_hierarchy = "taken_at"
    show_full_result_count = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("risk.manage_limits") or super().has_view_permission(request, obj))

    def get_urls(self) -> list[Any]:
        site = self.admin_site
        extra = [
            path(
                "risk/",
                site.admin_view(lambda r: admin_views.risk_page_go_view(r, admin_site=site)),
                name="analytics_risk_go",
            ),
            # <path:> because a symbol scope may hold a slash (an FX pair such as symbol:EUR/USD).
            path(
                "risk/<path:scope_text>/",
                site.admin_view(lambda r, scope_text: admin_views.risk_page_view(r, scope_text, admin_site=site)),
                name="analytics_risk_page",
            ),
        ]
        return extra + super().get_urls()
