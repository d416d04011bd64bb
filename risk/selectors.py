"""Risk read queries: metrics, positions and limits as API.md shapes them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from market.models import Mark
from risk.models import (
    FIRM_SCOPE,
    FIRM_STATE_ID,
    LimitScope,
    Position,
    RiskLimits,
    RiskState,
    ScopeState,
    TradingState,
)
from risk.scopes import FIRM, Scope
from risk.store import LIMIT_FIELDS, firm_limits, utc_today

ZERO = Decimal(0)
# The limits of a scope's answer, in API.md's order (risk.services.SCOPE_LIMIT_FIELDS validates them).
SCOPE_LIMIT_NAMES = (
    "max_order_quantity",
    "max_order_value",
    "max_position_size",
    "max_daily_volume",
    "max_net_exposure",
    "max_gross_exposure",
    "max_daily_loss",
    "price_collar_pct",
    "max_var",
)


def risk_state() -> RiskState:
    state = RiskState.objects.filter(pk=FIRM_STATE_ID).first()
    return state or RiskState(pk=FIRM_STATE_ID)


def scope_positions(scope: Scope = FIRM) -> QuerySet[Position]:
    """A scope's position rows: the firm's (v1's), a desk's, book's or trader's; a symbol scope's is the firm's
    row of that symbol."""
    if scope.kind == "symbol":
        return Position.objects.filter(scope=FIRM_SCOPE, symbol=scope.key)
    return Position.objects.filter(scope=str(scope))


def at_market(rows: list[Position]) -> list[dict[str, Any]]:
    """Position rows valued at the market's latest prices, in the reporting currency (risk.store's SQL values
    them the same way under the lock): the mark (the market's last price; the last fill where the instrument
    has none), market value (quantity x mark x multiplier x FX), exposure (the same; an option's
    delta-adjusted), unrealised P&L since entry and the P&L of the UTC day (realised today + unrealised now -
    unrealised at the day's start, valued at the day before's close)."""
    marks = {m.symbol: m for m in Mark.objects.filter(symbol__in={p.symbol for p in rows})}
    today = utc_today()
    valued = []
    for p in rows:
        mark = marks.get(p.symbol)
        last = mark.last if mark is not None else p.mark_price
        factor = mark.factor if mark is not None else Decimal(1)
        price = last if last is not None else p.average_price
        close = None
        if mark is not None:
            close = mark.prev_close if mark.day == today else mark.last
        if p.pnl_day == today:
            start = close if close is not None else p.sod_average_price
            daily = (
                p.day_realized_pnl
                + (p.quantity * (price - p.average_price) - p.sod_quantity * (start - p.sod_average_price)) * factor
            )
        else:
            start = close if close is not None else p.average_price
            daily = p.quantity * (price - start) * factor
        exposure = p.quantity * (mark.unit_value if mark is not None else price)
        valued.append(
            {
                "symbol": p.symbol,
                "quantity": p.quantity,
                "average_price": p.average_price,
                "mark_price": last,
                "market_value": _money(p.quantity * price * factor),
                "exposure": _money(exposure),
                "unrealized_pnl": _money((price - p.average_price) * p.quantity * factor) if last is not None else ZERO,
                "realized_pnl": p.realized_pnl,
                "daily_pnl": _money(daily),
                "mark_time": mark.timestamp if mark is not None else None,
            }
        )
    return valued


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def risk_metrics(scope: Scope = FIRM) -> dict[str, Any]:
    """Exposure of the filled positions at market; daily volume of the UTC day; open orders apart; P&L at
    market. The firm's (v1) or one scope's; the kill switch is the firm's."""
    state = risk_state()
    valued = at_market(list(scope_positions(scope).exclude(quantity=0, realized_pnl=0, day_realized_pnl=0)))
    values = [v["exposure"] for v in valued if v["quantity"] != 0]
    executed, open_volume = _scope_volumes(scope)
    return {
        "net_exposure": sum(values, ZERO),
        "gross_exposure": sum((abs(v) for v in values), ZERO),
        "daily_volume": executed,
        "total_positions": len(values),
        "largest_position": max((abs(v) for v in values), default=ZERO),
        "kill_switch_active": state.kill_switch_enabled,
        "open_orders_notional": open_volume,
        "timestamp": timezone.now(),
        "unrealized_pnl": sum((v["unrealized_pnl"] for v in valued), ZERO),
        "realized_pnl": sum((v["realized_pnl"] for v in valued), ZERO),
        "daily_pnl": sum((v["daily_pnl"] for v in valued), ZERO),
    }


def positions_list(scope: Scope = FIRM) -> list[dict[str, Any]]:
    return at_market(list(scope_positions(scope).exclude(quantity=0, realized_pnl=0).order_by("symbol")))


def limits_view(limits: RiskLimits | None = None) -> dict[str, Any]:
    limits = limits or firm_limits()
    data: dict[str, Any] = {name: getattr(limits, name) for name in LIMIT_FIELDS}
    data["kill_switch_enabled"] = risk_state().kill_switch_enabled
    data["updated_at"] = limits.updated_at
    return data


def trading_states() -> list[dict[str, Any]]:
    """Every scope not ACTIVE (the firm first), with who set it, when and why."""
    states: list[dict[str, Any]] = []
    firm = risk_state()
    if firm.trading_state != TradingState.ACTIVE:
        states.append(
            {
                "scope": FIRM_SCOPE,
                "state": firm.trading_state,
                "reason": firm.kill_switch_reason,
                "changed_by": getattr(firm.kill_switch_changed_by, "username", None),
                "changed_at": firm.kill_switch_changed_at,
            }
        )
    for row in ScopeState.objects.exclude(trading_state=TradingState.ACTIVE).select_related("changed_by"):
        states.append(
            {
                "scope": row.scope,
                "state": row.trading_state,
                "reason": row.reason,
                "changed_by": getattr(row.changed_by, "username", None),
                "changed_at": row.changed_at,
            }
        )
    return states


def _scope_volumes(scope: Scope) -> tuple[Decimal, Decimal]:
    """A scope's executed volume of the UTC day and its open orders' notional."""
    if scope == FIRM:
        state: RiskState | ScopeState | None = risk_state()
    else:
        state = ScopeState.objects.filter(scope=str(scope)).first()
    if state is None:
        return ZERO, ZERO
    executed = state.executed_volume if state.trading_day == utc_today() else ZERO
    return executed, state.open_volume


def scope_usage(scope: Scope) -> dict[str, Decimal]:
    """What a scope uses of its limits, measure by measure: its positions (a symbol scope's are the firm's row of
    that symbol), their exposures at their marks, and its day's and open volumes."""
    rows = list(scope_positions(scope))
    valued = at_market(rows)
    values = [v["exposure"] for v in valued]
    executed, open_volume = _scope_volumes(scope)
    return {
        "max_position_size": max((abs(v) for v in values), default=ZERO),  # a position's value, as checked
        "max_daily_volume": executed + open_volume,
        "max_net_exposure": abs(sum(values, ZERO)),
        "max_gross_exposure": sum((abs(v) for v in values), ZERO),
        "max_daily_loss": max(-sum((v["daily_pnl"] for v in valued), ZERO), ZERO),
    }


def scope_limits(scope: Scope, limits: RiskLimits | None = None) -> dict[str, Any]:
    """A scope's limits as API.md shapes them: every limit, null where the scope sets none (its parents still
    apply), and its usage."""
    if limits is None:
        if scope == FIRM:
            limits = firm_limits()
        else:
            limits = RiskLimits.objects.filter(scope=scope.limit_scope, scope_key=scope.key).first()
    data: dict[str, Any] = {"scope": str(scope)}
    data.update({name: getattr(limits, name) if limits is not None else None for name in SCOPE_LIMIT_NAMES})
    if scope == FIRM and data["price_collar_pct"] is None and settings.DEFAULT_PRICE_COLLAR_PCT:
        # The collar in force: the platform's default where the firm's row sets none (risk.store applies it).
        data["price_collar_pct"] = Decimal(str(settings.DEFAULT_PRICE_COLLAR_PCT))
    data["usage"] = scope_usage(scope)
    return data


def limited_scopes() -> list[Scope]:
    """Every scope with limits set (the firm first)."""
    scopes = [FIRM]
    for kind, key in (
        RiskLimits.objects.exclude(scope=LimitScope.FIRM)
        .order_by("scope", "scope_key")
        .values_list("scope", "scope_key")
    ):
        scopes.append(Scope(kind.lower(), key))
    return scopes
