"""How the back office writes money, quantities and times for people: one place, so every page agrees."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

CENT = Decimal("0.01")


def money(value: object, currency: str = "") -> str:
    """1234567.891 -> "1,234,567.89 USD": thousands separators, two decimals, the currency after (when given);
    a blank or unreadable value is an en dash."""
    if value is None or value == "":
        return "–"
    try:
        number = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, ValueError):
        return str(value)
    text = f"{number:,.2f}"
    return f"{text} {currency}" if currency else text


def quantity(value: object) -> str:
    """A quantity with separators and only the decimals it has (100 -> "100", 0.5 -> "0.5")."""
    if value is None or value == "":
        return "–"
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    text = f"{number:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def utc_time(value: dt.datetime | None) -> str:
    """2026-11-28 19:04:44 UTC: to the second, always in UTC and saying so."""
    if value is None:
        return "–"
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
