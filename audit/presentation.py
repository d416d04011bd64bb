"""How compliance reads events: types in groups, rejections as sentences, payloads as tables, numbers as money."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from audit.models import EventType

# The back office's groups of event types; a type added later by another feature falls in a group by its
# name (GROUP_BY_PREFIX) or, failing that, in "other", so the filter never hides an event.
GROUPS: dict[str, tuple[str, ...]] = {
    "orders": (
        "ORDER_CREATED",
        "ORDER_REFUSED",
        "ORDER_CANCELLED",
        "ORDER_REQUEUED",
        "ORDER_EXPIRED",
        "ORDER_RESTING",
        "ORDER_PARTIALLY_FILLED",
        "ORDER_AMEND_REQUESTED",
        "ORDER_AMENDED",
        "ORDER_AMEND_REJECTED",
        "EXECUTION_STARTED",
        "EXECUTION_ATTEMPT_FAILED",
        "EXECUTION_COMPLETED",
        "EXECUTION_FAILED",
        "FILL_DUPLICATE_IGNORED",
    ),
    "risk": (
        "RISK_CHECK_STARTED",
        "RISK_CHECK_PASSED",
        "RISK_CHECK_FAILED",
        "LIMITS_CHANGED",
        "KILL_SWITCH_ACTIVATED",
        "KILL_SWITCH_DEACTIVATED",
        "TRADING_STATE_CHANGED",
        "DAILY_VOLUME_RESET",
        "CIRCUIT_BREAKER_OPENED",
        "CIRCUIT_BREAKER_HALF_OPENED",
        "CIRCUIT_BREAKER_CLOSED",
        "VAR_LIMIT_BREACHED",
        "CHANGE_REQUESTED",
        "CHANGE_APPROVED",
        "CHANGE_REJECTED",
        "CHANGE_EXPIRED",
        "ALERT_RAISED",
        "ALERT_ACKNOWLEDGED",
        "ALERT_CONFIG_CHANGED",
    ),
    "auth": (
        "LOGIN_SUCCEEDED",
        "LOGIN_FAILED",
        "LOGIN_LOCKED_OUT",
        "LOGGED_OUT",
        "TOKEN_REFRESHED",
        "TOKEN_REFUSED",
        "PERMISSION_DENIED",
    ),
    "admin": (
        "USER_CREATED",
        "ROLE_CHANGED",
        "USER_DEACTIVATED",
        "USER_REACTIVATED",
        "PASSWORD_CHANGED",
        "GROUP_PERMISSIONS_CHANGED",
        "DESK_CREATED",
        "BOOK_CREATED",
        "GRANT_ADDED",
        "GRANT_REVOKED",
        "USER_DETAILS_CHANGED",
        "AUDIT_SCHEDULE_CHANGED",
    ),
    "market": ("INSTRUMENT_LISTED", "INSTRUMENT_CHANGED", "MARKET_HISTORY_LOADED"),
    "integrity": ("AUDIT_EXPORTED", "AUDIT_VERIFIED", "AUDIT_SEALING_STOPPED"),
}
GROUP_BY_PREFIX = {
    "ORDER_": "orders",
    "EXECUTION_": "orders",
    "FILL_": "orders",
    "RISK_": "risk",
    "LIMIT": "risk",
    "APPROVAL": "risk",
    "CHANGE_": "risk",
    "VAR_": "risk",
    "ALERT": "risk",
    "LOGIN_": "auth",
    "TOKEN_": "auth",
    "USER_": "admin",
    "SCHEDULE": "admin",
    "AUDIT_": "integrity",
    "INSTRUMENT_": "market",
    "MARKET_": "market",
}


def group_of(event_type: str) -> str:
    for group, types in GROUPS.items():
        if event_type in types:
            return group
    for prefix, group in GROUP_BY_PREFIX.items():
        if event_type.startswith(prefix):
            return group
    return "other"


def types_of_group(group: str) -> list[str]:
    return [value for value in EventType.values if group_of(value) == group]


def grouped_types() -> list[tuple[str, list[tuple[str, str]]]]:
    """[(group, [(value, label), ...]), ...] for a grouped select, in GROUPS order, "other" last."""
    names = [*GROUPS, "other"]
    return [
        (group, [(value, label) for value, label in EventType.choices if group_of(value) == group])
        for group in names
        if types_of_group(group)
    ]


# --- numbers -------------------------------------------------------------------------------------------
DECIMAL_TEXT = re.compile(r"^-?\d+\.\d+$")
INTEGER_TEXT = re.compile(r"^-?\d+$")
# Integers under these keys are amounts too (a limit of 1000000 is money, a failure_limit of 5 is a count).
MONEY_KEYS = re.compile(
    r"(limit|projected|price|quantity|exposure|volume|notional|value|position|amount|pnl)", re.IGNORECASE
)
COUNT_KEYS = re.compile(r"(_id$|^id$|sequence|seal|count|events|rows|failure_limit|problems|seconds|lines)")


def money(value: Any) -> str:
    """1250000 -> "1,250,000.00" (half-even, as Decimal rounds)."""
    return f"{Decimal(str(value)).quantize(Decimal('0.01')):,}"


def readable_number(key: str, value: Any) -> str | None:
    """The value as money if it is an amount, else None (shown as it is)."""
    if isinstance(value, bool) or value is None:
        return None
    if COUNT_KEYS.search(key):
        return None
    if isinstance(value, float) or (isinstance(value, str) and DECIMAL_TEXT.match(value)):
        try:
            return money(value)
        except (InvalidOperation, ValueError):
            return None
    if MONEY_KEYS.search(key) and (isinstance(value, int) or (isinstance(value, str) and INTEGER_TEXT.match(value))):
        return money(value)
    return None


# --- rejections ----------------------------------------------------------------------------------------
def violation_sentence(violation: dict[str, Any]) -> str:
    """{"code": "POSITION_LIMIT", "scope": "book:EQ-1", "projected": "1250000", "limit": "1000000"} ->
    "POSITION_LIMIT on book:EQ-1: projected 1,250,000.00 > limit 1,000,000.00"."""
    code = violation.get("code", "?")
    scope = violation.get("scope") or "firm"
    projected, limit = violation.get("projected"), violation.get("limit")
    try:
        figures = f": projected {money(projected)} > limit {money(limit)}"
    except (InvalidOperation, ValueError, TypeError):
        figures = ""
    return f"{code} on {scope}{figures}"


def rejection_sentences(payload: dict[str, Any]) -> list[str]:
    """The violations of a rejection (RISK_CHECK_FAILED, ORDER_AMEND_REJECTED), or its kill switch."""
    violations = payload.get("violations")
    sentences = (
        [violation_sentence(v) for v in violations if isinstance(v, dict)] if isinstance(violations, list) else []
    )
    if not sentences and payload.get("kill_switch"):
        sentences = ["Kill switch active: all trading halted"]
    return sentences


def summary(event_type: str, payload: dict[str, Any], width: int = 110) -> str:
    """One line for the event list."""
    sentences = rejection_sentences(payload)
    if sentences:
        text = "; ".join(sentences)
    elif event_type == "ORDER_CREATED" and payload.get("symbol"):
        price = readable_number("price", payload.get("price")) or "market"
        text = (
            f"{payload.get('side')} {readable_number('quantity', payload.get('quantity'))} {payload['symbol']} @ {price}"
            f", book {payload.get('book') or '—'}"
            + (f", client order id {payload['client_order_id']}" if payload.get("client_order_id") else "")
        )
    elif event_type == "ORDER_REFUSED":
        text = f"refused: {payload.get('reason')}" + (
            f" (client order id {payload['client_order_id']})" if payload.get("client_order_id") else ""
        )
    elif event_type in ("LOGIN_FAILED", "LOGIN_LOCKED_OUT") and payload.get("reason"):
        text = f"{payload.get('username', '')}: {str(payload['reason']).replace('_', ' ')}"
    else:
        parts = []
        for key, value in payload.items():
            if isinstance(value, dict | list):
                continue
            shown = readable_number(key, value) or ("—" if value is None else str(value))
            parts.append(f"{key}: {shown}")
        text = ", ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


# --- payloads as tables --------------------------------------------------------------------------------
def _cell(key: str, value: Any) -> SafeString:
    if isinstance(value, dict):
        return payload_table(value)
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            return _rows_table(value)
        return format_html_join(", ", "{}", ((str(item),) for item in value)) if value else mark_safe("—")  # noqa: S308
    number = readable_number(key, value)
    if number is not None:
        return format_html('<span class="num">{}</span>', number)
    if value is None:
        return mark_safe("—")  # noqa: S308 - a constant
    return format_html("{}", str(value))


def _rows_table(rows: list[dict[str, Any]]) -> SafeString:
    keys = list(dict.fromkeys(key for row in rows for key in row))
    head = format_html_join("", "<th>{}</th>", ((key,) for key in keys))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((_cell(k, row.get(k)),) for k in keys)),) for row in rows),
    )
    return format_html('<table class="payload-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


def payload_table(payload: dict[str, Any]) -> SafeString:
    """A payload as a two-column table (nested objects as tables in their cell, lists of objects as tables
    with a column per key); amounts as money with separators and two decimals."""
    if not payload:
        return mark_safe("<em>empty</em>")  # noqa: S308 - a constant
    rows = format_html_join(
        "", '<tr><th scope="row">{}</th><td>{}</td></tr>', ((key, _cell(key, value)) for key, value in payload.items())
    )
    return format_html('<table class="payload-table"><tbody>{}</tbody></table>', rows)


def parse_moment(text: str) -> dt.datetime | None:
    """ "2026-11-28", "2026-11-28 14:05", "2026-11-28 14:05:09", ISO with T/Z/offset -> aware UTC (naive = UTC)."""
    text = text.strip()
    try:  # a well-formed but impossible date ("2026-02-30") raises
        moment = parse_datetime(text)
        if moment is None and (day := parse_date(text)) is not None:
            moment = dt.datetime.combine(day, dt.time())
    except ValueError:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)
