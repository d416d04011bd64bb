"""Back-office pages of the orders app: the internal venue's book depth per instrument for risk managers, and the
number and time formats the order pages share."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from market.models import Instrument
from orders import internal
from orders.models import Order

LEVELS = 10
MAX_LEVELS = 50
TRADES = 20


def quantity_text(value: Any) -> str:
    """A quantity as a person reads it: thousands separated, no trailing zeros (10.00000000 -> 10)."""
    if value is None or value == "":
        return "–"
    number = Decimal(str(value))
    return f"{number.normalize():,f}" if number else "0"


def price_text(value: Any) -> str:
    """A price with at least two decimals and no trailing zeros past them (101.50000000 -> 101.50)."""
    if value is None or value == "":
        return "–"
    number = Decimal(str(value)).normalize()
    exponent = number.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{number:,.{places}f}"


def utc_text(value: dt.datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def amend_detail(row: dict[str, Any]) -> SafeString:
    """Why an amendment ended as it did: each violation on a line of its own (which limit, where, projected over
    limit), or the decision's message when there is none."""
    if not row["violations"]:
        return format_html("{}", row["message"] or "–")
    return format_html_join(
        "",
        '<div class="itirp-violation"><strong>{}</strong> on {}: {} over {}</div>',
        (
            (v.get("code"), v.get("scope"), price_text(v.get("projected")), price_text(v.get("limit")))
            for v in row["violations"]
        ),
    )


def _levels(request: HttpRequest) -> int:
    try:
        return max(1, min(MAX_LEVELS, int(request.GET.get("levels", LEVELS))))
    except ValueError:
        return LEVELS


def book_depth_context(symbol: str | None, levels: int) -> dict[str, Any]:
    """The picker (every listed instrument with its resting order count) and, for `symbol` (by default the
    first with resting orders, else the first listed), its depth best first and its last trades."""
    resting = dict(
        Order.objects.filter(resting_seq__isnull=False, status__in=internal.RESTING_STATUSES)
        .values_list("symbol")
        .annotate(n=Count("pk"))
        .order_by()
    )
    instruments = [
        {"symbol": s, "name": name, "resting": resting.get(s, 0)}
        for s, name in Instrument.objects.order_by("symbol").values_list("symbol", "name")
    ]
    listed = {i["symbol"] for i in instruments}
    if symbol is None:
        symbol = next(
            (i["symbol"] for i in instruments if i["resting"]), instruments[0]["symbol"] if instruments else ""
        )
    elif symbol not in listed:
        raise Http404(f"{symbol} is not a listed instrument")
    book: dict[str, Any] = (
        internal.depth(symbol, levels) if symbol else {"bids": [], "asks": [], "timestamp": timezone.now()}
    )
    bids: list[dict[str, Any]] = book["bids"]
    asks: list[dict[str, Any]] = book["asks"]
    top = max([lvl["quantity"] for lvl in [*bids, *asks]] or [Decimal(0)])
    for lvl in [*bids, *asks]:
        lvl["width"] = f"{(lvl['quantity'] / top * 100) if top else 0:.1f}"
        lvl["price_text"], lvl["quantity_text"] = price_text(lvl["price"]), quantity_text(lvl["quantity"])
    best_bid = bids[0]["price"] if bids else None
    best_ask = asks[0]["price"] if asks else None
    return {
        "symbol": symbol,
        "instruments": instruments,
        "levels": levels,
        "bids": bids,
        "asks": asks,
        "best_bid": best_bid,
        "best_ask": best_ask,
        "best_bid_text": price_text(best_bid),
        "best_ask_text": price_text(best_ask),
        "spread_text": price_text(best_ask - best_bid) if best_bid is not None and best_ask is not None else "–",
        "trades": [
            {
                "at": utc_text(t.created_at),
                "price": price_text(t.price),
                "quantity": quantity_text(t.quantity),
                "side": t.aggressor_side,
            }
            for t in (internal.trades(symbol, TRADES) if symbol else [])
        ],
        "now": book["timestamp"],
    }


def book_depth_view(request: HttpRequest, *, admin_site: Any) -> HttpResponse:
    """The internal venue's book for one instrument: the same permission as the risk dashboard."""
    if not request.user.has_perm("risk.view_risk_metrics"):
        raise PermissionDenied
    symbol = request.GET.get("symbol", "").strip().upper() or None
    context = book_depth_context(symbol, _levels(request))
    if getattr(request, "htmx", False):
        # htmx polls this same URL and swaps only the panel (as the risk dashboard does).
        return TemplateResponse(request, "admin/orders/_book_depth_panel.html", context)
    context.update(admin_site.each_context(request))
    context["title"] = f"Internal book: {context['symbol']}" if context["symbol"] else "Internal book"
    return TemplateResponse(request, "admin/orders/book_depth.html", context)
