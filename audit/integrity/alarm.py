"""The integrity alarm: raised when sealing stops or verification fails, read by the health check."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger("itirp.audit")

ALARM_KEY = "itirp:audit:integrity-alarm"


def alarm_raise(*, summary: str, source: str) -> bool:
    """Raise (or keep) the alarm of one source ("seal" or "verify"); True when it is new or says something
    new (worth a new event), so a sealer stopped every 10 s records its cause once."""
    try:
        current = cache.get(ALARM_KEY) or {}
        if current.get(source, {}).get("summary") == summary:
            return False
        current[source] = {"summary": summary, "source": source, "since": timezone.now().isoformat()}
        cache.set(ALARM_KEY, current, None)
    except Exception:  # noqa: BLE001 - the alarm is also logged and recorded; a cache outage must not hide it
        logger.exception("audit integrity alarm could not be stored in the cache")
    return True


def alarm_clear() -> None:
    """A successful verification clears every source: the trail holds, the sealer's next run resumes."""
    try:
        cache.delete(ALARM_KEY)
    except Exception:  # noqa: BLE001 - clearing is retried by the next successful verification
        logger.exception("audit integrity alarm could not be cleared")


def integrity_alarm() -> dict[str, Any] | None:
    """The alarm in force (the oldest source's), or None. Raises when the cache cannot be read."""
    current = cache.get(ALARM_KEY) or {}
    return min(current.values(), key=lambda a: a["since"]) if current else None
