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


def below_usage(changes: dict[str, Any], used: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The new limits that are below what is used now (orders adding to them would be rejected at once)."""
    return [
        {"name": n, "label": labels.get(n, n), "new": v, "used": abs(used[n])}
        for n, v in changes.items()
        if v is not None and used.get(n) is not None and v < abs(used[n])
    ]


def below_usage_token(below: list[dict[str, Any]]) -> str:
    """What the confirmation button carries: the exact values confirmed, so a different value asks again."""
    return ";".join(f"{b['name']}={b['new']}" for b in below)


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


TICK_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600]  # seconds between time labels
MIN_SPAN = 300.0  # a chart of one point still spans five minutes
LIMIT_SCALE = 20  # the value axis reaches the limits when they are at most this many times the exposure


def _time_ticks(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Round UTC times inside [start, end], about six of them, at a step people read (1, 2, 5, 10... minutes)."""
    span = (end - start).total_seconds()
    step = next((s for s in TICK_STEPS if span / s <= 7), TICK_STEPS[-1])
    epoch = int(start.timestamp())
    first = epoch + (-epoch) % step
    return [dt.datetime.fromtimestamp(t, dt.UTC) for t in range(first, int(end.timestamp()) + 1, step)]


def exposure_chart(*, now: dt.datetime, current: dict[str, Any], limits: Any) -> dict[str, Any]:
    """An inline-SVG chart of net and gross exposure over the UTC day, from snapshots plus the live point.
    The time axis spans the data (15 minutes of data fill the chart); the value axis includes the limits, so
    their lines are drawn inside the chart, each labelled."""
    day_start = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = list(
        ExposureSnapshot.objects.filter(taken_at__gte=day_start, taken_at__lte=now)
        .order_by("taken_at")
        .values_list("taken_at", "net_exposure", "gross_exposure")
    )
    rows.append((now, current["net_exposure"], current["gross_exposure"]))
    start = min(rows[0][0], now - dt.timedelta(seconds=MIN_SPAN))
    span = max((now - start).total_seconds(), MIN_SPAN)
    gross_limit, net_limit = limits.max_gross_exposure, limits.max_net_exposure
    values = [v for r in rows for v in (r[1], r[2])]
    peak = max([*(abs(v) for v in values), Decimal(1)])
    # The value axis holds the limits when they are within LIMIT_SCALE of the exposure; a limit far above it
    # would flatten the lines to nothing, so then the axis fits the data and that limit is named at the top
    # edge, inside the chart ("off the scale"), instead of being drawn.
    with_limits = max(gross_limit, net_limit) <= peak * LIMIT_SCALE
    top = (max(peak, gross_limit, net_limit) if with_limits else peak) * Decimal("1.08")
    negative = min(values) < 0
    bottom = -top if negative else ZERO

    def x(ts: dt.datetime) -> float:
        return round((ts - start).total_seconds() / span * CHART_W, 1)

    def y(value: Decimal) -> float:
        return round(CHART_H - float((value - bottom) / (top - bottom)) * CHART_H, 1)

    lines = []
    for kind, value, sign in [("gross", gross_limit, 1), ("net", net_limit, 1), ("net", net_limit, -1)]:
        if sign < 0 and not negative:
            continue
        label = f"{kind} limit {'-' if sign < 0 else ''}{value:,.2f}"
        if value <= top:
            lines.append({"y": y(value * sign), "label": label, "kind": kind, "drawn": True})
        elif sign > 0:
            pinned = 11.0 + 12 * sum(1 for line in lines if not line["drawn"])
            lines.append({"y": pinned, "label": f"↑ {label}: off the scale", "kind": kind, "drawn": False})
    seconds = span < 180
    return {
        "width": CHART_W,
        "height": CHART_H,
        "net": " ".join(f"{x(ts)},{y(net)}" for ts, net, _ in rows),
        "gross": " ".join(f"{x(ts)},{y(gross)}" for ts, _, gross in rows),
        "limit_lines": lines,
        "gross_limit": f"{gross_limit:,.2f}",
        "net_limit": f"{net_limit:,.2f}",
        "zero_y": y(ZERO),
        "top_y": y(top),
        "with_limits": with_limits,
        "top_label": f"{top:,.0f}",
        "bottom_label": f"{bottom:,.0f}",
        "points": len(rows),
        "ticks": [
            {"x": x(t), "label": t.strftime("%H:%M:%S" if seconds else "%H:%M")} for t in _time_ticks(start, now)
        ],
        "start": start,
        "span_minutes": round(span / 60, 1),
        "now_x": x(now),
        "net_now_y": y(current["net_exposure"]),
        "gross_now_y": y(current["gross_exposure"]),
    }


def _name_largest(cards: list[dict[str, Any]], positions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The largest-position card says whose position it is (the symbol with the largest exposure)."""
    held = [p for p in positions if p["quantity"] != 0]
    if held:
        largest = max(held, key=lambda p: abs(p["exposure"]))
        for card in cards:
            if card["key"] == "max_position_size":
                card["symbol"], card["quantity"] = largest["symbol"], largest["quantity"]
    return cards


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
    positions = selectors.positions_list(scope)
    return {
        "now": now,
        "scope": str(scope),
        "scope_state": state.trading_state if state else "ACTIVE",
        "metrics": {**selectors.risk_metrics(scope), "open_orders_notional": state.open_volume if state else ZERO},
        "cards": _name_largest(cards, positions),
        "kill_switch": selectors.risk_state(),
        "breaker": breaker_state(),
        "positions": positions,
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
    positions = selectors.positions_list()
    cards = [{"key": key, "label": CARD_LABELS[key], **u} for key, u in limit_usages().items()]
    return {
        "now": now,
        "metrics": metrics,
        "cards": _name_largest(cards, positions),
        "kill_switch": state,
        "breaker": breaker_state(),
        "positions": positions,
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
