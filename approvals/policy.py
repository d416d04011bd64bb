"""The four-eyes policy, by settings and off by default: which limit changes and releases wait for approval."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from django.conf import settings


def limit_raise_pct() -> Decimal | None:
    """FOUR_EYES_LIMIT_RAISE_PCT as a Decimal, or None when unset (the policy is off)."""
    raw = getattr(settings, "FOUR_EYES_LIMIT_RAISE_PCT", None)
    if raw is None or raw == "":
        return None
    return Decimal(str(raw))


def limits_raised(old: Mapping[str, Decimal | None], new: Mapping[str, Decimal | None]) -> list[str]:
    """The limits of `new` that rise by more than FOUR_EYES_LIMIT_RAISE_PCT over their current value (`old`).
    A limit cleared (null: no limit of its own) or set where none was counts as a raise of any size: a
    percentage over nothing has no meaning, and either way the threshold in force is a new one nobody has
    reviewed. Lowering a limit never waits. Empty when the policy is off."""
    pct = limit_raise_pct()
    if pct is None:
        return []
    raised = []
    for name, value in new.items():
        before = old.get(name)
        if value == before:
            continue
        if value is None or before is None or value > before * (1 + pct / 100):
            raised.append(name)
    return raised


def halt_release_waits() -> bool:
    """FOUR_EYES_RELEASE_HALT: leaving HALTED (any scope, the firm's kill switch included) waits for approval."""
    return bool(getattr(settings, "FOUR_EYES_RELEASE_HALT", False))


def expiry_seconds() -> int:
    return int(getattr(settings, "FOUR_EYES_EXPIRY_SECONDS", 3600))
