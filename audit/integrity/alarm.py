"""The integrity alarm: raised when sealing stops or verification fails, read by the health check."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger("itirp.audit")

ALARM_KEY = "itirp:audit:integrity-alarm"


def alarm_raise(*, summary: str, source: str) -> bool:
    """Raise (or keep) the alarm; True when it is new or says something new (worth a new event)."""
    try:
        current = cache.get(ALARM_KEY)
        if current and current.get("summary") == summary:
            return False
        cache.set(ALARM_KEY, {"summary": summary, "source": source, "since": timezone.now().isoformat()}, None)
    except Exception:  # noqa: BLE001 - the alarm is also logged and recorded; a cache outage must not hide it
        logger.exception("audit integrity alarm could not be stored in the cache")
    return True


def alarm_clear() -> None:
    try:
        cache.delete(ALARM_KEY)
    except Exception:  # noqa: BLE001 - clearing is retried by the next successful verification
        logger.exception("audit integrity alarm could not be cleared")


def integrity_alarm() -> dict[str, Any] | None:
    """The alarm in force, or None. Raises when the cache cannot be read (the health check reports it)."""
    return cache.get(ALARM_KEY)
