"""Template filters of the back office: {{ x|money }}, {{ x|money:"EUR" }}, {{ x|qty }}, {{ t|utc }}."""

from __future__ import annotations

import datetime as dt

from django import template
from django.conf import settings

from core import formats

register = template.Library()


@register.filter
def money(value: object, currency: str | None = None) -> str:
    """Two decimals, separators, and the reporting currency unless another (or "" for none) is given."""
    return formats.money(value, settings.REPORTING_CURRENCY if currency is None else currency)


@register.filter
def amount(value: object) -> str:
    """Money without a currency, for a column whose heading names it."""
    return formats.money(value)


@register.filter
def qty(value: object) -> str:
    return formats.quantity(value)


@register.filter
def utc(value: dt.datetime | None) -> str:
    return formats.utc_time(value)
