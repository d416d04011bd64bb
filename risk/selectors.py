"""Risk read queries: metrics, positions and limits as API.md shapes them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils import timezone

from risk.models import FIRM_SCOPE, FIRM_STATE_ID, Position, RiskLimits, RiskState
from risk.store import LIMIT_FIELDS, firm_limits, utc_today

ZERO = Decimal(0)


def risk_state() -> RiskState:
    state = RiskState.objects.filter(pk=FIRM_STATE_ID).first()
    return state or RiskState(pk=FIRM_STATE_ID)


def risk_metrics() -> dict[str, Any]:
    """Exposure of the filled positions at their marks; daily volume of the UTC day; open orders apart."""
    state = risk_state()
    values = [p.market_value for p in Position.objects.filter(scope=FIRM_SCOPE).exclude(quantity=0)]
    executed = state.executed_volume if state.trading_day == utc_today() else ZERO
    return {
        "net_exposure": sum(values, ZERO),
        "gross_exposure": sum((abs(v) for v in values), ZERO),
        "daily_volume": executed,
        "total_positions": len(values),
        "largest_position": max((abs(v) for v in values), default=ZERO),
        "kill_switch_active": state.kill_switch_enabled,
        "open_orders_notional": state.open_volume,
        "timestamp": timezone.now(),
    }


def positions_list() -> list[dict[str, Any]]:
    return [
        {
            "symbol": p.symbol,
            "quantity": p.quantity,
            "average_price": p.average_price,
            "market_value": p.market_value,
            "unrealized_pnl": p.unrealized_pnl,
            "realized_pnl": p.realized_pnl,
            "mark_price": p.mark_price,
        }
        for p in Position.objects.filter(scope=FIRM_SCOPE).exclude(quantity=0, realized_pnl=0).order_by("symbol")
    ]


def limits_view(limits: RiskLimits | None = None) -> dict[str, Any]:
    limits = limits or firm_limits()
    data: dict[str, Any] = {name: getattr(limits, name) for name in LIMIT_FIELDS}
    data["kill_switch_enabled"] = risk_state().kill_switch_enabled
    data["updated_at"] = limits.updated_at
    return data
