"""The back office's risk-analytics page per scope: VaR by three methods side by side, ES, the P&L distribution,
stress results as a table and a bar chart, and the VaR history of the day (hand-written SVG, like the dashboard).

Who: a scope's risk managers, compliance and admin (risk.access.can_view_scope, as GET /risk/limits/{scope}).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.permissions import signed_in_user
from analytics import engine, selectors
from analytics.engine import FloatArray
from books.models import Book, Desk
from core.exceptions import InvalidInput
from risk import access
from risk.models import FIRM_STATE_ID, RiskLimits, RiskState, ScopeState
from risk.scopes import FIRM, Scope, ScopeError

W, H = 720, 220  # the charts' drawing area (viewBox units; the SVG scales to the page)
METHOD_LABELS = {"historical": "Historical", "parametric": "Parametric", "monte_carlo": "Monte Carlo"}


def _scope(user: Any, text: str) -> Scope:
    try:
        scope = Scope.parse(text)
        access.scope_require(scope)
    except (ScopeError, InvalidInput) as exc:
        raise Http404(str(exc)) from exc
    if not access.can_view_scope(user, scope):
        raise PermissionDenied
    return scope


def visible_scopes(user: Any) -> list[str]:
    """The scopes this page may show the user: the firm, desks and books, and trader and symbol scopes with
    limits, each where can_view_scope allows."""
    candidates = [FIRM]
    candidates += [Scope("desk", c) for c in Desk.objects.order_by("code").values_list("code", flat=True)]
    candidates += [Scope("book", c) for c in Book.objects.order_by("code").values_list("code", flat=True)]
    candidates += [
        Scope(kind.lower(), key)
        for kind, key in RiskLimits.objects.filter(scope__in=["TRADER", "SYMBOL"])
        .order_by("scope", "scope_key")
        .values_list("scope", "scope_key")
    ]
    return [str(s) for s in candidates if access.can_view_scope(user, s)]


def histogram_chart(pnl: FloatArray | None, var: float, es: float) -> dict[str, Any] | None:
    """Bars of the scenarios' P&L, with the VaR and ES drawn where a loss of that size lies."""
    if pnl is None or pnl.size == 0 or not pnl.any():
        return None
    counts, edges = engine.histogram(pnl, bins=30)
    low, high = edges[0], edges[-1]
    span = (high - low) or 1.0
    top = max(counts) or 1
    width = W / len(counts)

    def x(value: float) -> float:
        return round((value - low) / span * W, 1)

    bars = [
        {
            "x": round(i * width, 1),
            "w": round(max(width - 1, 1), 1),
            "h": round(c / top * (H - 10), 1),
            "y": round(H - c / top * (H - 10), 1),
            "loss": edges[i + 1] <= -var,
            "title": f"{edges[i]:,.0f} to {edges[i + 1]:,.0f}: {c} scenario(s)",
        }
        for i, c in enumerate(counts)
    ]
    return {
        "width": W,
        "height": H,
        "bars": bars,
        "var_x": x(-var) if low <= -var <= high else None,
        "es_x": x(-es) if low <= -es <= high else None,
        "zero_x": x(0.0) if low <= 0 <= high else None,
        "low": f"{low:,.0f}",
        "high": f"{high:,.0f}",
        "count": int(pnl.size),
    }


def stress_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Horizontal bars, one per scenario, its name in a column of its own on the left: losses left of the axis
    in red, gains right in green, the value beside the bar. Narrower than the other charts so that its text
    stays legible on a phone."""
    width, labels, row_h = 560, 150, 30
    peak = max((abs(float(r["pnl"])) for r in rows), default=0.0) or 1.0
    axis = labels + (width - labels) / 2
    half = (width - labels) / 2 - 70  # room for the value's text beside the longest bar
    bars = []
    for i, r in enumerate(rows):
        value = float(r["pnl"])
        length = round(abs(value) / peak * half, 1)
        bars.append(
            {
                "y": i * row_h + 5,
                "x": round(axis - length, 1) if value < 0 else axis,
                "w": max(length, 0.5),
                "loss": value < 0,
                "label": r["name"],
                "label_y": i * row_h + 21,
                "value": f"{value:,.0f}",
                "value_x": round(axis - length - 5, 1) if value < 0 else round(axis + length + 5, 1),
                "anchor": "end" if value < 0 else "start",
            }
        )
    return {"width": width, "height": len(rows) * row_h + 10, "axis_x": axis, "bars": bars}


def history_chart(snapshots: list[Any]) -> dict[str, Any] | None:
    """The day's VaR snapshots as a line over the UTC day, the limit dashed where set."""
    if not snapshots:
        return None
    values = [float(s.var) for s in snapshots]
    limits = [float(s.max_var) for s in snapshots if s.max_var is not None]
    top = max([*values, *limits[-1:]]) * 1.15 or 1.0
    start = snapshots[0].taken_at.replace(hour=0, minute=0, second=0, microsecond=0)

    def x(ts: Any) -> float:
        return round((ts - start).total_seconds() / 86400 * W, 1)

    def y(value: float) -> float:
        return round(H - value / top * (H - 10), 1)

    return {
        "width": W,
        "height": H,
        "points": " ".join(f"{x(s.taken_at)},{y(v)}" for s, v in zip(snapshots, values, strict=True)),
        "dots": [{"x": x(s.taken_at), "y": y(v)} for s, v in list(zip(snapshots, values, strict=True))[-60:]],
        "limit_y": y(limits[-1]) if limits else None,
        "top": f"{top:,.0f}",
        "hours": [{"x": round(h / 24 * W, 1), "label": f"{h:02d}:00"} for h in range(0, 25, 6)],
    }


def _state(scope: Scope) -> str:
    if scope == FIRM:
        firm = RiskState.objects.filter(pk=FIRM_STATE_ID).first()
        return firm.trading_state if firm else "ACTIVE"
    row = ScopeState.objects.filter(scope=str(scope)).first()
    return row.trading_state if row else "ACTIVE"


def page_context(scope: Scope) -> dict[str, Any]:
    confidence = settings.ANALYTICS_LIMIT_CONFIDENCE
    horizon = settings.ANALYTICS_LIMIT_HORIZON_DAYS
    p = selectors.portfolio(scope)
    methods = []
    histogram = None
    for method in engine.METHODS:
        figures = selectors.var_of(p, method=method, confidence=confidence, horizon_days=horizon)
        methods.append({"key": method, "label": METHOD_LABELS[method], "figures": figures})
        if method == "historical":
            histogram = histogram_chart(figures.pnl, float(figures.var), float(figures.expected_shortfall))
    stress_rows = []
    for named in selectors.scenarios_list():
        shocks: dict[str, float] = dict(named["shocks"])
        answer = selectors.stress_answer(p, shocks)
        stress_rows.append({"name": named["name"], "description": named["description"], "pnl": answer["pnl"]})
    limits = RiskLimits.objects.filter(scope=scope.limit_scope, scope_key=scope.key).first()
    snapshots = selectors.var_history(scope)
    return {
        "scope": str(scope),
        "state": _state(scope),
        "max_var": limits.max_var if limits else None,
        "confidence_pct": f"{confidence * 100:g}",
        "horizon": horizon,
        "currency": p.currency,
        "positions": len(p.holdings),
        "observations": p.returns.shape[0],
        "methods": methods,
        "histogram": histogram,
        "stress": stress_rows,
        "stress_chart": stress_chart(stress_rows),
        "history": snapshots[-50:][::-1],
        "history_count": len(snapshots),
        "history_chart": history_chart(snapshots),
        "as_of": p.as_of,
    }


def risk_page_view(request: HttpRequest, scope_text: str, *, admin_site: Any) -> HttpResponse:
    user = signed_in_user(request)
    scope = _scope(user, scope_text)
    context = {
        **admin_site.each_context(request),
        "title": f"Risk analytics of {scope}",
        "choices": visible_scopes(user),
        **page_context(scope),
    }
    return TemplateResponse(request, "admin/analytics/risk_page.html", context)


def risk_page_go_view(request: HttpRequest, *, admin_site: Any) -> HttpResponse:
    """The navigation's entry and the page's scope picker: ?scope=..., the firm by default (or the first scope
    the user may see)."""
    user = signed_in_user(request)
    text = request.GET.get("scope", "").strip()
    if not text:
        visible = visible_scopes(user)
        if not visible:
            raise PermissionDenied
        text = visible[0]
    return HttpResponseRedirect(reverse("admin:analytics_risk_page", args=[text]))
