"""The compliance period report (GET /audit/report, the back office's report page, its CSV and PDF): what
happened between two instants, read from the orders and fills tables and from the events."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Sum
from django.db.models.functions import Coalesce

from audit.models import Event, EventType
from audit.presentation import money
from orders.models import Fill, Order

NO_APPROVER = "—"
USER_EVENTS = (
    EventType.USER_CREATED,
    EventType.ROLE_CHANGED,
    EventType.USER_DEACTIVATED,
    EventType.USER_REACTIVATED,
    EventType.PASSWORD_CHANGED,
    EventType.GROUP_PERMISSIONS_CHANGED,
)


def _text(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


@dataclass
class PeriodReport:
    since: datetime
    until: datetime
    orders_by_status: dict[str, int] = field(default_factory=dict)
    orders_total: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)  # [{code, scope, count}]
    refusals: dict[str, int] = field(default_factory=dict)  # ORDER_REFUSED by reason
    fills: dict[str, Any] = field(default_factory=dict)  # {count, quantity, notional, orders}
    trading_states: list[dict[str, Any]] = field(default_factory=list)
    limit_changes: list[dict[str, Any]] = field(default_factory=list)
    user_changes: list[dict[str, Any]] = field(default_factory=list)
    verifications: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "orders": {"total": self.orders_total, "by_status": self.orders_by_status},
            "rejections": self.rejections,
            "refusals": self.refusals,
            "fills": self.fills,
            "trading_state_periods": self.trading_states,
            "limit_changes": self.limit_changes,
            "user_changes": self.user_changes,
            "verifications": self.verifications,
        }


def _events(since: datetime, until: datetime, *types: str) -> Any:
    return Event.objects.filter(timestamp__gte=since, timestamp__lt=until, event_type__in=types).order_by("sequence")


def period_report(*, since: datetime, until: datetime) -> PeriodReport:
    """Orders created in [since, until) by their status now; their risk rejections by limit and scope (a
    rejection names each limit it broke, so one order may count under several); refused attempts by
    reason; fills made in the period; each scope's trading-state periods that overlap it; limit changes
    with requester and approver (a four-eyes approval names it in the payload's approved_by); user and
    role changes; the integrity verifications run."""
    report = PeriodReport(since=since, until=until)
    orders = Order.objects.filter(created_at__gte=since, created_at__lt=until)
    by_status = dict(orders.values_list("status").annotate(n=Count("id")).order_by("status"))
    report.orders_by_status = {str(k): int(v) for k, v in by_status.items()}
    report.orders_total = sum(report.orders_by_status.values())

    rejected: Counter[tuple[str, str]] = Counter()
    for payload in _events(since, until, EventType.RISK_CHECK_FAILED).values_list("payload", flat=True).iterator():
        violations = payload.get("violations") if isinstance(payload, dict) else None
        if violations:
            for v in violations:
                rejected[(str(v.get("code")), str(v.get("scope") or "firm"))] += 1
        elif isinstance(payload, dict) and payload.get("kill_switch"):
            rejected[("KILL_SWITCH", "firm")] += 1
    report.rejections = [
        {"code": code, "scope": scope, "count": count} for (code, scope), count in sorted(rejected.items())
    ]
    refused: Counter[str] = Counter(
        str(p.get("reason")) if isinstance(p, dict) else "?"
        for p in _events(since, until, EventType.ORDER_REFUSED).values_list("payload", flat=True).iterator()
    )
    report.refusals = dict(sorted(refused.items()))

    fills = Fill.objects.filter(created_at__gte=since, created_at__lt=until)
    notional = ExpressionWrapper(
        F("quantity") * F("price"), output_field=DecimalField(max_digits=38, decimal_places=16)
    )
    totals = fills.aggregate(
        fill_count=Count("id"),
        filled_orders=Count("order_id", distinct=True),
        total_quantity=Coalesce(
            Sum("quantity"), Decimal(0), output_field=DecimalField(max_digits=38, decimal_places=8)
        ),
        total_notional=Coalesce(Sum(notional), Decimal(0), output_field=DecimalField(max_digits=38, decimal_places=16)),
    )
    report.fills = {
        "count": totals["fill_count"],
        "orders": totals["filled_orders"],
        "quantity": totals["total_quantity"],
        "notional": Decimal(totals["total_notional"]).quantize(Decimal("0.01")),
    }

    report.trading_states = _trading_state_periods(since, until)

    for event in _events(since, until, EventType.LIMITS_CHANGED):
        payload = event.payload if isinstance(event.payload, dict) else {}
        changed = payload.get("changed") or {}
        report.limit_changes.append(
            {
                "timestamp": event.timestamp,
                "scope": payload.get("scope", "firm"),
                "changes": {name: {"old": c.get("old"), "new": c.get("new")} for name, c in changed.items()},
                "reason": payload.get("reason"),
                "requested_by": payload.get("requested_by") or event.actor_username or "system",
                "approved_by": payload.get("approved_by") or NO_APPROVER,
            }
        )
    for event in _events(since, until, *USER_EVENTS):
        payload = event.payload if isinstance(event.payload, dict) else {}
        report.user_changes.append(
            {
                "timestamp": event.timestamp,
                "event_type": event.event_type,
                "user": payload.get("username") or payload.get("group") or "",
                "detail": _user_detail(event.event_type, payload),
                "by": event.actor_username or "system",
            }
        )
    for event in _events(since, until, EventType.AUDIT_VERIFIED):
        payload = event.payload if isinstance(event.payload, dict) else {}
        report.verifications.append(
            {
                "timestamp": event.timestamp,
                "ok": bool(payload.get("ok")),
                "events_verified": payload.get("events_verified"),
                "seals": payload.get("seals"),
                "head_seal": payload.get("head_seal"),
                "detail": payload.get("detail") or "",
            }
        )
    return report


def _user_detail(event_type: str, payload: dict[str, Any]) -> str:
    if event_type == EventType.ROLE_CHANGED:
        return f"{payload.get('old_role')} → {payload.get('new_role')}"
    if event_type == EventType.USER_CREATED:
        return f"role {payload.get('role')}" + (" (superuser)" if payload.get("is_superuser") else "")
    if event_type == EventType.USER_DEACTIVATED:
        return f"reason: {payload.get('reason') or '—'}"
    return ", ".join(f"{k}: {v}" for k, v in payload.items() if k not in ("username", "user_id"))[:200]


def _trading_state_periods(since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Each scope's states as periods clipped to [since, until): the state a scope was in at `since` (its
    last change before) and each change inside. A scope never changed is ACTIVE and not listed."""
    periods: list[dict[str, Any]] = []
    changes = Event.objects.filter(event_type=EventType.TRADING_STATE_CHANGED, timestamp__lt=until).order_by("sequence")
    by_scope: dict[str, list[tuple[datetime, str, str, str]]] = {}
    for event in changes.only("timestamp", "payload", "actor_username").iterator():
        payload = event.payload if isinstance(event.payload, dict) else {}
        scope = str(payload.get("scope", "firm"))
        by_scope.setdefault(scope, []).append(
            (event.timestamp, str(payload.get("state")), event.actor_username, str(payload.get("reason") or ""))
        )
    for scope, steps in sorted(by_scope.items()):
        before = [step for step in steps if step[0] < since]
        inside = [step for step in steps if step[0] >= since]
        if not inside and (not before or before[-1][1] == "ACTIVE"):
            continue
        timeline = ([(since, *before[-1][1:])] if before else []) + inside
        for index, (start, state, actor, reason) in enumerate(timeline):
            end = timeline[index + 1][0] if index + 1 < len(timeline) else None
            periods.append(
                {"scope": scope, "state": state, "from": start, "until": end, "by": actor or "system", "reason": reason}
            )
    return periods


def counts_line(report: PeriodReport) -> str:
    """The figures a reader checks first, in one line (the PDF's and the page's headline)."""
    rejected = report.orders_by_status.get("REJECTED", 0)
    return (
        f"Orders: {report.orders_total}; rejected: {rejected}; refused attempts: {sum(report.refusals.values())}; "
        f"fills: {report.fills.get('count', 0)}; limit changes: {len(report.limit_changes)}; "
        f"user changes: {len(report.user_changes)}; verifications: {len(report.verifications)}"
    )


def _changes_text(changes: dict[str, Any]) -> str:
    return "; ".join(f"{name}: {_amount(c.get('old'))} → {_amount(c.get('new'))}" for name, c in changes.items())


def _amount(value: Any) -> str:
    if value is None:
        return "none"
    try:
        return money(value)
    except Exception:  # noqa: BLE001 - a value that is not a number is shown as it is
        return str(value)


def sections(report: PeriodReport) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as titled tables of text: one source for the page, the CSV and the PDF."""
    fills = report.fills
    return [
        (
            "Orders by status",
            ["status", "orders"],
            [[status, str(n)] for status, n in report.orders_by_status.items()] + [["total", str(report.orders_total)]],
        ),
        (
            "Rejections by limit and scope",
            ["limit", "scope", "rejections"],
            [[r["code"], r["scope"], str(r["count"])] for r in report.rejections],
        ),
        ("Refused attempts", ["reason", "attempts"], [[reason, str(n)] for reason, n in report.refusals.items()]),
        (
            "Fills",
            ["fills", "orders filled", "quantity", "notional"],
            [
                [
                    str(fills.get("count", 0)),
                    str(fills.get("orders", 0)),
                    _amount(fills.get("quantity", 0)),
                    _amount(fills.get("notional", 0)),
                ]
            ],
        ),
        (
            "Trading-state periods",
            ["scope", "state", "from", "until", "set by", "reason"],
            [
                [p["scope"], p["state"], _text(p["from"]), _text(p["until"]) or "(still)", p["by"], p["reason"]]
                for p in report.trading_states
            ],
        ),
        (
            "Limit changes",
            ["time", "scope", "changes", "reason", "requested by", "approved by"],
            [
                [
                    _text(c["timestamp"]),
                    c["scope"],
                    _changes_text(c["changes"]),
                    str(c["reason"] or ""),
                    c["requested_by"],
                    c["approved_by"],
                ]
                for c in report.limit_changes
            ],
        ),
        (
            "User and role changes",
            ["time", "change", "user", "detail", "by"],
            [[_text(u["timestamp"]), u["event_type"], u["user"], u["detail"], u["by"]] for u in report.user_changes],
        ),
        (
            "Integrity verifications",
            ["time", "result", "events verified", "seals", "detail"],
            [
                [
                    _text(v["timestamp"]),
                    "OK" if v["ok"] else "FAILED",
                    str(v["events_verified"] if v["events_verified"] is not None else ""),
                    str(v["seals"] if v["seals"] is not None else ""),
                    v["detail"],
                ]
                for v in report.verifications
            ],
        ),
    ]


def as_csv(report: PeriodReport) -> str:
    """One CSV: a header block, then each section as its title row, its column row and its rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["ITIRP period report", _text(report.since), _text(report.until)])
    writer.writerow([counts_line(report)])
    for title, columns, rows in sections(report):
        writer.writerow([])
        writer.writerow([title])
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_safe(cell) for cell in row])
    return out.getvalue()


def _safe(value: str) -> str:
    # A cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
