"""Structured logging: every line of every ITIRP process is one JSON object, with secrets redacted.

One formatter (`JsonFormatter`, used by settings.LOGGING, gunicorn.conf.py and the Celery worker) renders
records from structlog loggers and from plain `logging` loggers (Django, Celery, gunicorn, libraries) alike:

    {"timestamp": "2026-01-30T14:30:00.123456Z", "level": "INFO", "component": "orders",
     "event": "order_created", "order_id": "...", "correlation_id": "...", "user_id": "trader1",
     "process": "web", "details": {...}}

Context bound with structlog.contextvars (the request's correlation id and user by the request
middleware, the task's correlation id and order id by itirp.celery) is merged into every line.
Keys that name secrets (password, token, authorization, secret, ...) are redacted at any depth, and
bearer tokens, JWTs and `password=...` pairs are scrubbed from free text, before anything is written.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson
import structlog
from django.http import StreamingHttpResponse
from django_structlog import signals
from django_structlog.middlewares.request import RequestMiddleware
from django_structlog.middlewares.request import logger as _request_log

from core.console import ConsoleRenderer, QuietPeriodicTasks

# Keys rendered at the top level; everything else goes under "details".
TOP_LEVEL = ("timestamp", "level", "component", "event", "order_id", "correlation_id", "user_id", "process")
REDACTED = "[REDACTED]"
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)|secret|token|authori[sz]ation|api[-_]?key|cookie|credential|signature|"
    r"private[-_]?key|sessionid|csrf",
    re.IGNORECASE,
)
_SCRUB_TEXT = (
    # A JWT anywhere (header.payload.signature, base64url, header starts with '{"').
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{REDACTED}"),
    # key=value / "key": "value" pairs inside free text (query strings, reprs of dicts).
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token|api[-_]?key|authorization)[\w-]*[\"']?\s*[=:]\s*[\"']?)"
            r"[^\s&,;\"'}]+"
        ),
        rf"\1{REDACTED}",
    ),
)
_COMPONENTS = {
    "django_structlog.middlewares.request": "http",
    "django.request": "http",
    "django.server": "http",
    "gunicorn.error": "gunicorn",
    "gunicorn.access": "http",
    # granian (itirp.serve, the web server): its Python loggers are named after its Rust module
    "_granian": "granian",
    "_granian.serve": "granian",
    "granian.access": "http",
}


def process_role() -> str:
    """What this process is (ITIRP_PROCESS, else guessed from its command line): web, worker, beat, ..."""
    if os.environ.get("ITIRP_PROCESS"):
        return os.environ["ITIRP_PROCESS"]
    argv = " ".join(sys.argv[:4]).lower()
    if any(word in argv for word in ("gunicorn", "granian", "itirp.serve", "itirp/serve", "runserver", "wsgi")):
        return "web"
    if "celery" in argv:  # `celery -A itirp --quiet beat`: the sub-command may come after the 4th word
        return "beat" if "beat" in sys.argv[1:] else "worker"
    if "pytest" in argv or "py.test" in argv:
        return "test"
    return "manage" if "manage" in argv else (os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python")


_PROCESS = process_role()
__all__ = ["ConsoleFormatter", "JsonFormatter", "QuietPeriodicTasks", "formatter", "get_logger", "redact"]


# Cheap first look: only text that mentions one of these is run through _SCRUB_TEXT (most text never is).
_MAYBE_SECRET_TEXT = re.compile(r"eyJ|bearer|pass|secret|token|api.?key|authori", re.IGNORECASE)


@lru_cache(maxsize=4096)
def _sensitive_key(key: str) -> bool:
    return bool(_SENSITIVE_KEY.search(key))


_PLAIN = frozenset({int, float, bool, type(None), decimal.Decimal, uuid.UUID, dt.datetime, dt.date})


def redact(value: Any, depth: int = 0) -> Any:
    """The value with secrets replaced: values of sensitive keys at any depth, tokens inside text."""
    kind = type(value)
    if kind in _PLAIN:  # most values: checked by type first, this runs for every value of every line
        return value
    if kind is str:
        if len(value) < 8 or not _MAYBE_SECRET_TEXT.search(value):
            return value
        for pattern, replacement in _SCRUB_TEXT:
            value = pattern.sub(replacement, value)
        return value
    if depth > 8:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _sensitive_key(k) else redact(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v, depth + 1) for v in value]
    if isinstance(value, str):
        return redact(str(value), depth)
    return value


def _redact_processor(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return redact(event_dict)


def _timestamp(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # Always microseconds and Z, also when the microsecond is 0 (isoformat() would drop it).
    event_dict["timestamp"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return event_dict


def _component(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    name = event_dict.pop("logger", None) or "root"
    if not event_dict.get("component"):
        event_dict["component"] = _COMPONENTS.get(name) or name.removeprefix("itirp.")
    return event_dict


def _shape(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """The line's fixed shape: known keys on top (empty ones dropped), everything else in details."""
    level = event_dict.pop("level", None) or method
    line: dict[str, Any] = {
        "timestamp": event_dict.pop("timestamp"),
        "level": str(level).upper().replace("EXCEPTION", "ERROR"),
        "component": event_dict.pop("component", "root"),
        "event": event_dict.pop("event", ""),
    }
    for key in TOP_LEVEL[4:]:
        value = event_dict.pop(key, None)
        if value not in (None, ""):
            line[key] = value
    line.setdefault("process", _PROCESS)
    details = event_dict.pop("details", None)
    details = dict(details) if isinstance(details, Mapping) else ({"value": details} if details else {})
    details.update(event_dict)
    if details:
        line["details"] = details
    return line


def _json_default(value: Any) -> Any:
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


# Datetimes and dataclasses go through _json_default as they did through json.dumps (isoformat, repr).
_ORJSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _dumps(obj: Any, **kwargs: Any) -> str:
    """One compact JSON line, ASCII only: orjson (C, a fifth of json.dumps's time for a request's or an event's
    line); json.dumps for what orjson refuses (an integer past 64 bits, a key that is not a string) or writes
    otherwise (text beyond ASCII, which json escapes as \\uXXXX)."""
    try:
        rendered = orjson.dumps(obj, default=_json_default, option=_ORJSON)
    except TypeError:  # orjson.JSONEncodeError
        pass
    else:
        if rendered.isascii():
            return rendered.decode()
    return json.dumps(obj, default=_json_default, ensure_ascii=True, separators=(",", ":"))


_RENDER_CHAIN = [
    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
    _timestamp,
    _component,
    structlog.processors.StackInfoRenderer(),
    structlog.processors.format_exc_info,
    _redact_processor,
    _shape,
    structlog.processors.JSONRenderer(serializer=_dumps),
]


def _drop_formatter_leftovers(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # Attributes another formatter may have set on the shared record; logging forbids them as real extras.
    event_dict.pop("message", None)
    event_dict.pop("asctime", None)
    return event_dict


_FOREIGN_CHAIN = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.stdlib.ExtraAdder(),
    _drop_formatter_leftovers,
]

_configured = False


def configure_structlog() -> None:
    """structlog loggers hand their event dicts to the stdlib handlers, which render them with JsonFormatter."""
    global _configured
    if _configured:
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # Python warnings (Celery's running-as-root SecurityWarning, deprecations) become JSON lines too.
    logging.captureWarnings(True)
    _configured = True


# A record that carries its line already shaped (events_logged): the formatters only render it.
_PREPARED = "itirp_line"


def _prepared(record: logging.LogRecord) -> dict[str, Any] | None:
    return getattr(record, _PREPARED, None)


def log_line(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """What a structlog logger's `log(level, event, **fields)` writes, shaped by the same steps (the context
    merged, timestamp, component, redaction, shape) without structlog's proxies and the formatter's record
    copies: for the lines written for every request."""
    if not logger.isEnabledFor(level):
        return
    method = logging.getLevelName(level).lower()
    event_dict = dict(structlog.contextvars.merge_contextvars(None, method, {"event": event, **fields}))
    event_dict["logger"], event_dict["level"] = logger.name, method
    for step in (_timestamp, _component, _redact_processor, _shape):
        event_dict = step(None, method, event_dict)
    logger.handle(logger.makeRecord(logger.name, level, __file__, 0, event, (), None, extra={_PREPARED: event_dict}))


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """The one log formatter of ITIRP (settings.LOGGING, gunicorn, Celery): one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = _prepared(record)
        return _dumps(line) if line is not None else super().format(record)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Building the formatter configures structlog too, so the two can never disagree.
        configure_structlog()
        kwargs.setdefault("processors", _RENDER_CHAIN)
        kwargs.setdefault("foreign_pre_chain", _FOREIGN_CHAIN)
        super().__init__(*args, **kwargs)


class ConsoleFormatter(structlog.stdlib.ProcessorFormatter):
    """LOG_FORMAT=console (make run): the same event dicts as JSON, one short human line each."""

    def __init__(self, *args: Any, colors: bool | None = None, **kwargs: Any) -> None:
        configure_structlog()
        if colors is None:
            colors = _colors_wanted()
        self._renderer = ConsoleRenderer(colors=colors)
        kwargs.setdefault("processors", [*_RENDER_CHAIN[:-1], self._renderer])
        kwargs.setdefault("foreign_pre_chain", _FOREIGN_CHAIN)
        super().__init__(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        line = _prepared(record)
        return (
            self._renderer(None, record.levelname.lower(), dict(line)) if line is not None else super().format(record)
        )


def _colors_wanted() -> bool:
    # LOG_COLOR=1/0 decides (make run passes whether its own terminal is one: honcho pipes our output);
    # otherwise colours only on a terminal, and never with NO_COLOR (https://no-color.org).
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("LOG_COLOR") in ("0", "1"):
        return os.environ["LOG_COLOR"] == "1"
    return sys.stderr.isatty()


def formatter(kind: str | None = None) -> logging.Formatter:
    """The formatter LOG_FORMAT selects: json (the default, production) or console (make run)."""
    kind = (kind or os.environ.get("LOG_FORMAT") or "json").strip().lower()
    if kind == "json":
        return JsonFormatter()
    if kind == "console":
        return ConsoleFormatter()
    raise ValueError(f"LOG_FORMAT must be json or console, not {kind!r}")


def get_logger(component: str) -> Any:
    """A structlog logger whose lines carry `component` (logger name itirp.<component>)."""
    return structlog.stdlib.get_logger(f"itirp.{component}")


# --- Requests ---------------------------------------------------------------------------------------------


_request_logger = logging.getLogger("django_structlog.middlewares.request")


class RequestLogMiddleware(RequestMiddleware):
    """django-structlog's request_started/request_finished lines, carrying the validated correlation id.

    Placed after core.middleware.CorrelationIdMiddleware (which validates X-Correlation-ID) and after
    AuthenticationMiddleware. django-structlog's own header reading stays off (it would bind the raw,
    unvalidated header); the id bound here is the one the order and the response carry.
    """

    def prepare(self, request: Any) -> None:
        structlog.contextvars.clear_contextvars()
        request._itirp_log_started = time.monotonic()
        correlation = getattr(request, "correlation_id", None)
        if correlation is not None:
            structlog.contextvars.bind_contextvars(correlation_id=str(correlation))
        super().prepare(request)

    @classmethod
    def bind_ip(cls, request: Any) -> None:
        # The address the audit trail records for the request (REMOTE_ADDR, core.middleware), not ipware's
        # reading of X-Forwarded-For and similar headers, which any client can send and which no proxy of ours
        # vouches for (accounts' lockout believes them only with NUM_PROXIES set); and a dictionary read where
        # ipware parsed a dozen headers on every request.
        structlog.contextvars.bind_contextvars(ip=request.META.get("REMOTE_ADDR"))

    def handle_response(self, request: Any, response: Any) -> None:
        started = getattr(request, "_itirp_log_started", None)
        if started is not None:
            structlog.contextvars.bind_contextvars(duration_ms=round((time.monotonic() - started) * 1000, 2))
        if hasattr(request, "_raised_exception") or isinstance(response, StreamingHttpResponse):
            super().handle_response(request, response)  # logs request_finished, then clears the context
            return
        # django-structlog's handle_response for an answer of every request (one line each): the same
        # request_finished line and signal, the line shaped by log_line instead of structlog's chain.
        self.bind_user_id(request)
        fields = {"code": response.status_code, "request": self.format_request(request)}
        signals.bind_extra_request_finished_metadata.send(
            sender=self.__class__, request=request, logger=_request_log, response=response, log_kwargs=fields
        )
        log_line(_request_logger, self._log_level_for_status_code(response.status_code), "request_finished", **fields)
        structlog.contextvars.clear_contextvars()


def request_log_early_answer(request: Any, response: Any, *, started: float) -> bool:
    """Write request_finished for an answer RequestLogMiddleware never saw (refused or answered by a middleware
    before it: a 413, a 400, a redirect); False when that middleware already logged the request."""
    if hasattr(request, "_itirp_log_started"):
        return False
    middleware = RequestLogMiddleware(lambda _request: response)
    middleware.prepare(request)
    request._itirp_log_started = started
    middleware.handle_response(request, response)
    return True


# --- Events: one line per event appended to the store ---------------------------------------------------

_WARNING_EVENTS = frozenset(
    {
        "EXECUTION_ATTEMPT_FAILED",
        "EXECUTION_FAILED",
        "ORDER_REQUEUED",
        "CIRCUIT_BREAKER_OPENED",
        "KILL_SWITCH_ACTIVATED",
        "LOGIN_FAILED",
        "LOGIN_LOCKED_OUT",
        "TOKEN_REFUSED",
        "PERMISSION_DENIED",
        "USER_DEACTIVATED",
    }
)
_audit = logging.getLogger("itirp.audit")


def events_logged(events: list[Any]) -> None:
    """Called by audit.services.events_record once its transaction commits: each event logs one line
    (component "audit", event = its type in lower case). A change that rolls back logs nothing, and the
    lines are written after the caller's locks are released.

    Three or more lines per order on the submission path, so each is shaped here once, in its final form (the
    same keys, order and redaction as a structlog line through the formatter's chain; tests/observability),
    and handed to the handlers as a record carrying it: the formatter only renders it (`_prepared`)."""
    try:
        if not events:
            return
        # What structlog would merge from the context (the request's ip and request id, a task's ids): the
        # event's own order, correlation and user stand instead of the context's, the rest goes in details.
        extra = {k: v for k, v in structlog.contextvars.get_contextvars().items() if k not in TOP_LEVEL}
        extra = redact(extra) if extra else extra
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # written together: one instant
        for event in events:
            kind = str(event.event_type)
            level = logging.WARNING if kind in _WARNING_EVENTS else logging.INFO
            if not _audit.isEnabledFor(level):
                continue
            name = kind.lower()
            line: dict[str, Any] = {
                "timestamp": now,
                "level": logging.getLevelName(level),
                "component": "audit",
                "event": name,
            }
            if event.order_id:
                line["order_id"] = str(event.order_id)
            line["correlation_id"] = str(event.correlation_id)
            if event.actor_username:
                line["user_id"] = redact(event.actor_username)
            line["process"] = _PROCESS
            line["details"] = {
                "event_type": kind,
                "sequence": event.sequence,
                "event_id": str(event.event_id),
                "symbol": event.symbol or None,
                "causation_id": str(event.causation_id) if event.causation_id else None,
                "payload": redact(event.payload, 2),
                **extra,
            }
            record = _audit.makeRecord(_audit.name, level, __file__, 0, name, (), None, extra={_PREPARED: line})
            _audit.handle(record)
    except Exception:  # noqa: BLE001 - observability must never fail the change being recorded
        logging.getLogger("itirp.logs").exception("event_logging_failed")
