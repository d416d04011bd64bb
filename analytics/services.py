"""Analytics writes: the scheduled VaR run that keeps each scope's figures and moves a scope over its VaR limit
to REDUCING.

VaR is a control on the portfolio, not on the order: it is measured every minute (Celery beat), never on the
pre-trade path (risk.store). A scope over its max_var moves ACTIVE -> REDUCING through risk's own
trading_state_write under the risk lock, with a VAR_LIMIT_BREACHED event in the same transaction; REDUCING
cancels no orders (only HALTED does), so no orders are locked. A scope already REDUCING or HALTED is left as it
is: the breach is recorded when it moves the scope, not every minute after.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics import selectors
from analytics.models import VarSnapshot
from audit.models import EventType
from audit.services import event_record
from market import directory
from risk import store
from risk.models import FIRM_STATE_ID, RiskLimits, RiskState, ScopeState, TradingState
from risk.scopes import FIRM, Scope
from risk.services import trading_state_write

logger = logging.getLogger("itirp.analytics")


def var_limited_scopes() -> list[tuple[Scope, Decimal | None]]:
    """The firm (always measured, its chart of the day) and every scope with a max_var, with that limit."""
    rows = {
        (s.lower(), k): v
        for s, k, v in RiskLimits.objects.exclude(max_var=None).values_list("scope", "scope_key", "max_var")
    }
    scopes: list[tuple[Scope, Decimal | None]] = [(FIRM, rows.pop(("firm", ""), None))]
    scopes += [(Scope(kind, key), limit) for (kind, key), limit in sorted(rows.items())]
    return scopes


def _state(scope: Scope) -> str:
    if scope == FIRM:
        firm = RiskState.objects.filter(pk=FIRM_STATE_ID).first()
        return firm.trading_state if firm else TradingState.ACTIVE
    row = ScopeState.objects.filter(scope=str(scope)).first()
    return row.trading_state if row else TradingState.ACTIVE


@transaction.atomic
def var_breach_apply(*, scope: Scope, var: Decimal, max_var: Decimal, method: str, confidence: float) -> bool:
    """Move a scope over its VaR limit to REDUCING with VAR_LIMIT_BREACHED (and TRADING_STATE_CHANGED), under
    the risk lock; answers whether it moved (False when it was not ACTIVE)."""
    store.lock()
    if _state(scope) != TradingState.ACTIVE:
        return False
    event_record(
        event_type=EventType.VAR_LIMIT_BREACHED,
        payload={
            "scope": str(scope),
            "var": str(var),
            "max_var": str(max_var),
            "method": method,
            "confidence": confidence,
            "horizon_days": settings.ANALYTICS_LIMIT_HORIZON_DAYS,
        },
    )
    reason = f"VaR {var} over max_var {max_var} ({method}, {confidence:g}, scheduled run)"
    trading_state_write(actor=None, scope=scope, state=TradingState.REDUCING, reason=reason)
    return True


def var_limits_check(*, now: dt.datetime | None = None) -> list[VarSnapshot]:
    """Measure every VaR-limited scope (and the firm), keep the figures, move breaching scopes to REDUCING,
    drop snapshots past their retention. One scope failing is logged and does not stop the others."""
    now = now or timezone.now()
    method = settings.ANALYTICS_LIMIT_METHOD
    confidence = settings.ANALYTICS_LIMIT_CONFIDENCE
    horizon = settings.ANALYTICS_LIMIT_HORIZON_DAYS
    snapshots = []
    # One read of the daily history for every scope of the run (the scopes share their instruments).
    history = selectors.History.load(list(directory.all_terms()), settings.ANALYTICS_LOOKBACK_DAYS, now)
    for scope, max_var in var_limited_scopes():
        try:
            figures = selectors.var_of(
                selectors.portfolio(scope, now=now, history=history),
                method=method,
                confidence=confidence,
                horizon_days=horizon,
            )
        except Exception:  # noqa: BLE001 - one scope's bad data must not blind the run to the others
            logger.exception("VaR of %s could not be computed", scope)
            continue
        breached = max_var is not None and figures.var > max_var
        snapshots.append(
            VarSnapshot.objects.create(
                scope=str(scope),
                taken_at=now,
                method=method,
                confidence=Decimal(str(confidence)),
                horizon_days=horizon,
                var=figures.var,
                expected_shortfall=figures.expected_shortfall,
                max_var=max_var,
                observations=figures.observations,
                breached=breached,
            )
        )
        if breached:
            assert max_var is not None  # breached implies a limit
            var_breach_apply(scope=scope, var=figures.var, max_var=max_var, method=method, confidence=confidence)
    VarSnapshot.objects.filter(taken_at__lt=now - dt.timedelta(days=settings.ANALYTICS_SNAPSHOT_KEEP_DAYS)).delete()
    return snapshots
