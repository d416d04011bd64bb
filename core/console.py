"""The developer console (LOG_FORMAT=console, make run): short human log lines, and quiet periodic tasks.

A line: `14:30:00.123 INFO  web    audit      order_created  order=1f2e3d4c user=trader1 symbol=AAPL ...`
built from the same event dict as the JSON line (core.logs), secrets already redacted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# Identifiers a reader at the console does not need (they stay in the JSON lines of production).
_HIDDEN = frozenset({"event_type", "event_id", "causation_id", "sequence", "request_id", "ip", "user_agent", "task_id"})
_LEVEL_COLORS = {"DEBUG": "2", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "1;31"}
_MAX_VALUE = 60


def _value(value: Any) -> str:
    if isinstance(value, (Mapping, list, tuple)):
        text = json.dumps(value, default=str, separators=(",", ":"))
    else:
        text = str(value)
    if len(text) > _MAX_VALUE:
        text = text[: _MAX_VALUE - 1] + "…"
    return json.dumps(text) if (" " in text or not text) else text


class ConsoleRenderer:
    """The last step of the console formatter's chain: the shaped line (core.logs._shape) as one text line."""

    def __init__(self, *, colors: bool) -> None:
        self.colors = colors

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colors else text

    def __call__(self, logger: Any, method: str, line: dict[str, Any]) -> str:
        details = dict(line.get("details") or {})
        exception = details.pop("exception", None)
        payload = details.pop("payload", None)
        if isinstance(payload, Mapping):  # an audit event: its payload is what happened
            details = {**payload, **details}
        fields: list[tuple[str, Any]] = []
        if line.get("order_id"):
            fields.append(("order", str(line["order_id"])[:8]))
        if line.get("user_id"):
            fields.append(("user", line["user_id"]))
        if str(line.get("component", "")).startswith("celery"):
            details.pop("data", None)  # Celery's extra: the message's own arguments once more
        if details.get("user_id") == line.get("user_id"):
            details.pop("user_id", None)
        fields += [(k, v) for k, v in details.items() if k not in _HIDDEN and v not in (None, "", [], {})]
        if line.get("correlation_id"):
            fields.append(("cid", str(line["correlation_id"])[:8]))
        level = str(line.get("level", ""))
        text = " ".join(
            [
                str(line.get("timestamp", ""))[11:23],
                self._paint(_LEVEL_COLORS.get(level, "0"), f"{level:<7}"),
                self._paint("2", f"{line.get('process', ''):<6}"),
                self._paint("36", f"{line.get('component', ''):<10}"),
                self._paint("1", str(line.get("event", ""))),
                *(self._paint("2", f"{k}=") + _value(v) for k, v in fields),
            ]
        )
        return f"{text}\n{exception}" if exception else text


# --- Quiet periodic tasks ----------------------------------------------------------------------------------

_NOTHING_DONE = frozenset({"0", "None", "[]", "()", "{}", "''"})


@lru_cache(maxsize=1)
def _periodic_tasks() -> frozenset[str]:
    from django.conf import settings

    return frozenset(entry["task"] for entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).values())


class QuietPeriodicTasks(logging.Filter):
    """On Celery's loggers (settings.LOGGING): beat's "Sending due task" lines, and the worker's "received"
    and nothing-done "succeeded" lines of the periodic tasks, become DEBUG lines; so do the "succeeded" lines
    of order executions that found nothing to do (SKIPPED: the order went with another's execution group).

    An idle platform then writes nothing at INFO; a periodic task that did something (its return value: a
    count above 0, a verification) keeps its succeeded line, and its events log their own lines.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self._routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    @staticmethod
    def _routine(record: logging.LogRecord) -> bool:
        if record.name == "celery.beat":
            return str(record.msg).startswith("Scheduler: Sending due task")
        context = record.args if isinstance(record.args, Mapping) else {}
        if context.get("name") == "orders.execute" and record.name == "celery.app.trace":
            # the message of an order that another order's execution group already took: nothing done
            return str(context.get("return_value")) == "'SKIPPED'"
        if context.get("name") not in _periodic_tasks():
            return False
        if record.name == "celery.worker.strategy":
            return True
        return str(context.get("return_value")) in _NOTHING_DONE
