"""Back-office pages for risk managers: the live risk dashboard and the kill switch (with its confirmation step)."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from accounts.permissions import signed_in_user
from approvals.models import ChangeKind, ChangeStatus, PendingChange
from orders import breaker
from orders import services as order_services
from orders.models import OPEN_STATUSES, Order, OrderStatus
from risk import admin_access, selectors, store
from risk.models import ExposureSnapshot, RiskLimits, ScopeState
from risk.scopes import Scope, ScopeError

logger = logging.getLogger("itirp.backoffice")
WAITING = "Waiting for approval: the kill switch stays ON until a second risk manager approves turning it OFF."
ZERO = Decimal(0)
CHART_W, CHART_H = 720, 180
CARD_LABELS = {
    "max_net_exposure": "Net exposure",
    "max_gross_exposure": "Gross exposure",
    "max_daily_volume": "Daily volume (incl. open orders)",
    "max_position_size": "Largest position",
}


def usage(used: Decimal, limit: Decimal | None) -> dict[str, Any]:
    """One measure against its limit, as the bars and the limits form show it (a limit not set: no bar)."""
    used = abs(used)
    pct = float(used / limit * 100) if limit is not None and limit > 0 else 0.0
    level = "danger" if pct >= 90 else "warn" if pct >= 70 else "ok"
    return {"used": used, "limit": limit, "pct": round(pct, 1), "width": min(pct, 100.0), "level": level}


def limit_usages() -> dict[str, dict[str, Any]]:
    """Each firm limit with what counts against it now (the pre-trade checks' measures, open orders included)."""
    metrics = selectors.risk_metrics()
    limits = store.firm_limits()
    return {
        "max_net_exposure": usage(metrics["net_exposure"], limits.max_net_exposure),
        "max_gross_exposure": usage(metrics["gross_exposure"], limits.max_gross_exposure),
        "max_daily_volume": usage(metrics["daily_volume"] + metrics["open_orders_notional"], limits.max_daily_volume),
        "max_position_size": usage(metrics["largest_position"], limits.max_position_size),
    }


def breaker_state() -> dict[str, Any]:
    """The shared circuit breaker's state, or "unknown" when it cannot be read (its module may still be
    in progress, or Redis is down): the dashboard must render either way."""
    try:
        snapshot = dict(breaker.breaker_snapshot())
        snapshot["state"] = str(snapshot.get("status") or snapshot.get("state") or "unknown").upper()
        return snapshot
    except Exception as exc:  # noqa: BLE001 - any failure shows "unknown", never a broken page
        logger.info("breaker state unavailable: %s", exc.__class__.__name__)
        return {"state": "UNKNOWN"}


def exposure_chart(*, now: dt.datetime, current: dict[str, Any], limits: Any) -> dict[str, Any]:
    """An inline-SVG chart of net and gross exposure over the UTC day, from snapshots plus the live point."""
    start = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = list(
        ExposureSnapshot.objects.filter(taken_at__gte=start, taken_at__lte=now)
        .order_by("taken_at")
        .values_list("taken_at", "net_exposure", "gross_exposure")
    )
    rows.append((now, current["net_exposure"], current["gross_exposure"]))
    # Scaled to the day's exposure, not to the limits (they are often far above it and would flatten the
    # lines); a limit inside the scale is drawn as a line, one above it is named under the chart.
    peak = max([*(abs(r[2]) for r in rows), *(abs(r[1]) for r in rows)])
    top = (peak * Decimal("1.25")) if peak > 0 else limits.max_gross_exposure
    day = 86400.0

    def x(ts: dt.datetime) -> float:
        return round((ts - start).total_seconds() / day * CHART_W, 1)

    def y(value: Decimal) -> float:
        # Net may be negative: the axis runs from -top to +top, zero in the middle.
        return round(CHART_H / 2 - float(value / top) * (CHART_H / 2 - 4), 1)

    return {
        "width": CHART_W,
        "height": CHART_H,
        "net": " ".join(f"{x(ts)},{y(net)}" for ts, net, _ in rows),
        "gross": " ".join(f"{x(ts)},{y(gross)}" for ts, _, gross in rows),
        "gross_limit_y": y(limits.max_gross_exposure) if limits.max_gross_exposure <= top else None,
        "net_limit_y": y(limits.max_net_exposure) if limits.max_net_exposure <= top else None,
        "net_limit_neg_y": y(-limits.max_net_exposure),
        "gross_limit": f"{limits.max_gross_exposure:,.0f}",
        "net_limit": f"{limits.max_net_exposure:,.0f}",
        "zero_y": CHART_H / 2,
        "top_label": f"{top:,.0f}",
        "points": len(rows),
        "hours": [{"x": round(h / 24 * CHART_W, 1), "label": f"{h:02d}:00"} for h in range(0, 25, 3)],
        "now_x": x(now),
        "net_now_y": y(current["net_exposure"]),
        "gross_now_y": y(current["gross_exposure"]),
    }


def scope_limits_for(scope: Scope) -> RiskLimits | None:
    """A scope's own limits row, None where it sets none."""
    return RiskLimits.objects.filter(scope=scope.limit_scope, scope_key=scope.key).first()


def scope_dashboard_context(scope: Scope) -> dict[str, Any]:
    """The dashboard for one desk or book: its Position rows and limits, its open orders (no firm chart)."""
    now = timezone.now()
    used = selectors.scope_usage(scope)
    limits = scope_limits_for(scope)
    cards = []
    for key, label in CARD_LABELS.items():
        limit = getattr(limits, key) if limits else None
        bar = usage(used[key], limit) if limit is not None else {"used": abs(used[key]), "limit": None}
        cards.append({"key": key, "label": label, **bar})
    open_orders = Order.objects.filter(status__in=OPEN_STATUSES)
    open_orders = (
        open_orders.filter(book__code=scope.key)
        if scope.kind == "book"
        else open_orders.filter(book__desk__code=scope.key)
    )
    state = ScopeState.objects.filter(scope=str(scope)).first()
    return {
        "now": now,
        "scope": str(scope),
        "scope_state": state.trading_state if state else "ACTIVE",
        "metrics": {**selectors.risk_metrics(scope), "open_orders_notional": state.open_volume if state else ZERO},
        "cards": cards,
        "kill_switch": selectors.risk_state(),
        "breaker": breaker_state(),
        "positions": selectors.positions_list(scope),
        "open_orders": list(open_orders.select_related("user").order_by("-created_at")[:20]),
        "open_orders_count": open_orders.count(),
        "chart": None,
    }


def dashboard_scope(request: HttpRequest) -> Scope | None:
    """The ?book= or ?desk= filter as a scope the user may see (403 otherwise); None for the firm."""
    user = signed_in_user(request)
    book, desk = request.GET.get("book", "").strip(), request.GET.get("desk", "").strip()
    if not (book or desk):
        return None
    try:
        scope = Scope.parse(f"book:{book}" if book else f"desk:{desk}")
    except ScopeError as exc:
        raise PermissionDenied(str(exc)) from exc
    if not admin_access.scope_visible(user, scope):
        raise PermissionDenied
    return scope


def dashboard_context() -> dict[str, Any]:
    now = timezone.now()
    metrics = selectors.risk_metrics()
    limits = store.firm_limits()
    state = selectors.risk_state()
    open_orders = Order.objects.filter(status__in=OPEN_STATUSES)
    return {
        "now": now,
        "metrics": metrics,
        "cards": [{"key": key, "label": CARD_LABELS[key], **u} for key, u in limit_usages().items()],
        "kill_switch": state,
        "breaker": breaker_state(),
        "positions": selectors.positions_list(),
        "open_orders": list(open_orders.select_related("user").order_by("-created_at")[:20]),
        "open_orders_count": open_orders.count(),
        "chart": exposure_chart(now=now, current=metrics, limits=limits),
    }


def dashboard_view(request: HttpRequest, *, admin_site: Any) -> HttpResponse:
    if not request.user.has_perm("risk.view_risk_metrics"):
        raise PermissionDenied
    scope = dashboard_scope(request)
    context = dashboard_context() if scope is None else scope_dashboard_context(scope)
    context["reporting_currency"] = settings.REPORTING_CURRENCY
    user = signed_in_user(request)
    context["filter"] = {
        "desks": [d.code for d in admin_access.desks_visible(user)],
        "books": [b.code for b in admin_access.books_visible(user)],
        "query": request.GET.urlencode(),
    }
    if getattr(request, "htmx", False):
        # htmx polls this same URL every few seconds and swaps only the panel: no full reload.
        return TemplateResponse(request, "admin/risk/_dashboard_panel.html", context)
    context.update(admin_site.each_context(request))
    context["title"] = "Risk dashboard"
    return TemplateResponse(request, "admin/risk/dashboard.html", context)


class KillSwitchForm(forms.Form):
    enabled = forms.TypedChoiceField(
        choices=[("1", "on"), ("0", "off")], coerce=lambda v: v == "1", widget=forms.HiddenInput
    )
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "Why? (kept in the audit trail)"}),
        error_messages={"required": "A reason is required: it is kept in the audit trail."},
    )
    confirm = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required: it is kept in the audit trail.")
        return reason


def kill_switch_view(request: HttpRequest, *, admin_site: Any) -> HttpResponse:
    user = signed_in_user(request)
    can_toggle = user.has_perm("risk.toggle_kill_switch")
    if not (can_toggle or user.has_perm("risk.view_risk_metrics")):
        raise PermissionDenied
    state = selectors.risk_state()
    open_orders = Order.objects.filter(status=OrderStatus.APPROVED).count()
    form = KillSwitchForm(initial={"enabled": "0" if state.kill_switch_enabled else "1"})
    confirming = False
    if request.method == "POST":
        if not can_toggle:
            raise PermissionDenied
        form = KillSwitchForm(request.POST)
        if form.is_valid():
            enabled = form.cleaned_data["enabled"]
            if form.cleaned_data["confirm"] == "yes":
                written = order_services.kill_switch_set(
                    actor=user, enabled=enabled, reason=form.cleaned_data["reason"]
                )
                if isinstance(written, PendingChange):
                    messages.info(request, WAITING)
                    return HttpResponseRedirect(reverse("admin:risk_kill_switch"))
                _, cancelled = written
                if enabled:
                    messages.warning(
                        request, f"Kill switch is ON: trading halted, {len(cancelled)} open order(s) cancelled."
                    )
                else:
                    messages.success(request, "Kill switch is OFF: trading resumed.")
                return HttpResponseRedirect(reverse("admin:risk_kill_switch"))
            confirming = True
    context = {
        **admin_site.each_context(request),
        "title": "Kill switch",
        "state": state,
        "form": form,
        "confirming": confirming,
        "turning_on": form.data.get("enabled", form.initial.get("enabled")) == "1",
        "open_orders": open_orders,
        "can_toggle": can_toggle,
        "release_pending": PendingChange.objects.filter(
            status=ChangeStatus.PENDING, kind=ChangeKind.STATE_RELEASE, scope="firm"
        ).exists(),
    }
    return TemplateResponse(request, "admin/risk/kill_switch.html", context)
