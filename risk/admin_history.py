"""The back-office history page of one scope (the firm included): its limit and trading-state changes from
the audit trail, newest first, with who, when, old -> new and why."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.permissions import signed_in_user
from risk import admin_access
from risk.history import scope_history
from risk.scopes import FIRM, Scope, ScopeError


def scope_history_view(request: HttpRequest, scope_text: str, *, admin_site: Any) -> HttpResponse:
    user = signed_in_user(request)
    if not user.has_perm("risk.view_risk_metrics"):
        raise PermissionDenied
    try:
        scope = Scope.parse(scope_text)
    except ScopeError as exc:
        raise Http404(str(exc)) from exc
    if not admin_access.scope_visible(user, scope):
        raise PermissionDenied
    context = {
        **admin_site.each_context(request),
        "title": f"History of {scope}",
        "scope": str(scope),
        "is_firm": scope == FIRM,
        "rows": scope_history(scope),
    }
    return TemplateResponse(request, "admin/risk/scope_history.html", context)
