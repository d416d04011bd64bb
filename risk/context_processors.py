"""What every back-office page shows: the scopes HALTED now (the kill-switch banner) and the reporting currency."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def halted_scopes(request: HttpRequest) -> list[dict[str, Any]]:
    """The HALTED scopes the signed-in staff user may see, the firm first; none for anyone else."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return []
    from risk.admin_scopes import trading_states_visible  # noqa: PLC0415 - the pages' module loads admin and orders

    return [s for s in trading_states_visible(user) if s["state"] == "HALTED"]


def backoffice(request: HttpRequest) -> dict[str, Any]:
    # A callable: the template calls it only when it renders the banner (never for the API, nor for a page
    # that does not extend base_site.html).
    return {
        "REPORTING_CURRENCY": settings.REPORTING_CURRENCY,
        "itirp_halted": lambda: halted_scopes(request),
    }
