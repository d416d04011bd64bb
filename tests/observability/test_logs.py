"""JSON log lines: their shape, secrets never written, and the request's correlation id on every line."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import re
import uuid

import pytest
import structlog

from audit.models import Event, EventType
from core import logs
from core.logs import REDACTED, JsonFormatter, events_logged, get_logger, log_line, redact
from tests.conftest import PASSWORDS
from tests.observability.conftest import order_body

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_log_line_when_structlog_or_stdlib_then_one_json_object_with_the_fields(json_logs):
    order_id, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    get_logger("orders").info(
        "order_executed", order_id=order_id, correlation_id=correlation, user_id="trader1", symbol="AAPL"
    )
    logging.getLogger("itirp.risk").warning("limit %s near", "POSITION_LIMIT")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        logging.getLogger("django.request").exception("failed")

    text = json_logs.text
    assert len(text.splitlines()) == 3  # a traceback stays inside its one line
    structured, plain, failure = (json.loads(line) for line in text.splitlines())
    assert TIMESTAMP.match(structured["timestamp"]) and TIMESTAMP.match(plain["timestamp"])
    assert structured == {
        "timestamp": structured["timestamp"],
        "level": "INFO",
        "component": "orders",
        "event": "order_executed",
        "order_id": order_id,
        "correlation_id": correlation,
        "user_id": "trader1",
        "process": "test",
        "details": {"symbol": "AAPL"},
    }
    assert (plain["level"], plain["component"], plain["event"]) == ("WARNING", "risk", "limit POSITION_LIMIT near")
    assert "details" not in plain and "order_id" not in plain
    assert (failure["level"], failure["component"], failure["event"]) == ("ERROR", "http", "failed")
    assert "ValueError: boom\nsecond line" in failure["details"]["exception"]


def _same_last_two_lines(json_logs) -> dict:
    """The last two lines are the same line but for their timestamps (keys, values and their order): the
    first of them, without its timestamp."""
    prepared, chained = json_logs.lines()[-2:]
    assert TIMESTAMP.match(prepared.pop("timestamp")) and chained.pop("timestamp")
    assert list(prepared.items()) == list(chained.items())
    assert list(prepared["details"]) == list(chained["details"])
    return prepared


@pytest.mark.django_db
def test_event_line_when_logged_then_the_very_line_structlogs_chain_renders(json_logs):
    # events_logged shapes its lines itself (three per order on the submission path): the keys, their order,
    # the context's extras and the redaction must be those of a line through structlog and the formatter.
    event = Event(
        event_type=EventType.LOGIN_FAILED,
        sequence=7,
        event_id=uuid.uuid4(),
        order_id=None,
        correlation_id=uuid.uuid4(),
        actor_username="trader1",
        symbol="",
        payload={"username": "trader1", "password": "hunter2-secret", "nested": {"api_key": "k-123456789"}},
    )
    structlog.contextvars.bind_contextvars(ip="127.0.0.1", request_id="r-1", order_id="ctx-order", user_id="ctx")
    try:
        events_logged([event])
        get_logger("audit").log(
            logging.WARNING,
            "login_failed",
            order_id=None,
            correlation_id=str(event.correlation_id),
            user_id="trader1",
            details={
                "event_type": "LOGIN_FAILED",
                "sequence": 7,
                "event_id": str(event.event_id),
                "symbol": None,
                "causation_id": None,
                "payload": event.payload,
            },
        )
    finally:
        structlog.contextvars.clear_contextvars()
    prepared = _same_last_two_lines(json_logs)
    assert prepared["level"] == "WARNING" and "order_id" not in prepared
    assert prepared["details"]["ip"] == "127.0.0.1" and prepared["details"]["payload"]["password"] == REDACTED
    assert "hunter2" not in json_logs.text and "k-123456789" not in json_logs.text


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING, logging.ERROR])
def test_log_line_when_request_finished_then_the_very_line_structlogs_chain_renders(json_logs, level):
    # Every request's request_finished goes through log_line: the same line as structlog's logger writes.
    structlog.contextvars.bind_contextvars(
        correlation_id="c-1", request_id="r-1", ip="127.0.0.1", user_id="trader1", duration_ms=1.5
    )
    fields = {"code": 200, "request": "POST /api/v1/orders?token=abcdefgh123", "authorization": "Bearer x"}
    try:
        log_line(logging.getLogger("django_structlog.middlewares.request"), level, "request_finished", **fields)
        structlog.get_logger("django_structlog.middlewares.request").log(level, "request_finished", **fields)
    finally:
        structlog.contextvars.clear_contextvars()
    prepared = _same_last_two_lines(json_logs)
    assert (prepared["component"], prepared["user_id"], prepared["correlation_id"]) == ("http", "trader1", "c-1")
    assert "abcdefgh123" not in json_logs.text and prepared["details"]["authorization"] == REDACTED


def test_line_when_rendered_then_by_orjson_the_text_json_dumps_wrote(monkeypatch):
    # A request's or an event's line: Decimal, UUID, aware datetime, set, nested dicts, rendered in C.
    line = {
        "timestamp": "2026-11-30T13:00:00.000000Z",
        "event": "RISK_CHECK_PASSED",
        "details": {
            "quantity": decimal.Decimal("10.50"),
            "order_id": uuid.UUID("9f1c3b4e-1d2a-4c5b-8e9f-0a1b2c3d4e5f"),
            "at": dt.datetime(2026, 11, 30, 13, 0, 0, 120000, tzinfo=dt.UTC),
            "on": dt.date(2026, 11, 30),
            "checks": ("MAX_ORDER_QUANTITY",),
            "flags": {"x"},
            "n": None,
            "ok": True,
            "ratio": 1.5,
        },
    }
    before = json.dumps(line, default=logs._json_default, ensure_ascii=True, separators=(",", ":"))

    def refused(*args, **kwargs):
        raise AssertionError("json.dumps called for a plain ASCII line")

    monkeypatch.setattr(logs.json, "dumps", refused)
    assert logs._dumps(line) == before


@pytest.mark.parametrize(
    "line",
    [{"user": "zoë", "note": "€ 5"}, {"sequence": 2**70}, {1: "a key that is not a string"}],
    ids=["beyond-ascii", "integer-past-64-bits", "non-string-key"],
)
def test_line_when_orjson_refuses_or_writes_it_otherwise_then_json_dumps_text_still(line):
    # Escaped as \uXXXX, an integer of any size, a key made a string: what json.dumps wrote, as before.
    assert logs._dumps(line) == json.dumps(line, default=logs._json_default, ensure_ascii=True, separators=(",", ":"))
    assert logs._dumps(line).isascii()


def test_formatter_when_microsecond_is_zero_then_still_six_digits(time_machine):
    time_machine.move_to("2026-01-30T14:30:00+00:00", tick=False)
    record = logging.LogRecord("itirp.x", logging.INFO, __file__, 1, "tick", None, None)
    assert json.loads(JsonFormatter().format(record))["timestamp"] == "2026-01-30T14:30:00.000000Z"


def test_redact_when_secret_keys_at_any_depth_then_values_replaced():
    data = {
        "password": "p1",
        "user": {"name": "ann", "new_password": "p2", "tokens": ["t1"]},
        "headers": [{"Authorization": "Bearer abc"}, {"X-Api-Key": "k"}],
        "access_token": "a",
        "refresh_token": "r",
        "client_secret": "s",
        "quantity": 10,
    }
    assert redact(data) == {
        "password": REDACTED,
        "user": {"name": "ann", "new_password": REDACTED, "tokens": REDACTED},
        "headers": [{"Authorization": REDACTED}, {"X-Api-Key": REDACTED}],
        "access_token": REDACTED,
        "refresh_token": REDACTED,
        "client_secret": REDACTED,
        "quantity": 10,
    }


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /x?password=hunter2&page=1", "hunter2"),
        ("body {'username': 'ann', 'password': 'hunter2'}", "hunter2"),
        ('{"refresh_token": "r3fr3sh-value"}', "r3fr3sh-value"),
        ("header Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxMjM0NX0.c2lnbmF0dXJlLXBhcnQ in text", "c2lnbmF0dXJlLXBhcnQ"),
    ],
)
def test_redact_when_secret_inside_free_text_then_scrubbed(text, secret):
    scrubbed = redact(text)
    assert secret not in scrubbed and REDACTED in scrubbed


# transaction=True: event lines and metrics are emitted when the change commits (audit.services)
@pytest.mark.django_db(transaction=True)
def test_login_when_logged_then_password_and_tokens_never_appear(json_logs, api, trader):
    password = PASSWORDS["TRADER"]
    bad = api.post("/api/v1/auth/login", {"username": "trader1", "password": "wrong-Secret-42"}, format="json")
    good = api.post("/api/v1/auth/login", {"username": "trader1", "password": password}, format="json")
    assert (bad.status_code, good.status_code) == (401, 200)
    access, refresh = good.json()["access_token"], good.json()["refresh_token"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert api.get(f"/api/v1/orders?token={access}").status_code == 200
    assert api.post("/api/v1/auth/refresh", {"refresh_token": refresh}, format="json").status_code == 200
    # Careless logging of the same secrets is caught too, by key and inside text.
    get_logger("auth").info("debug", password=password, headers={"Authorization": f"Bearer {access}"})
    logging.getLogger("itirp.auth").warning("login body %s; refresh=%s", {"password": password}, refresh)

    events = {line["event"] for line in json_logs.lines()}
    assert {"login_failed", "login_succeeded", "request_finished", "debug"} <= events  # the capture saw it all
    text = json_logs.text
    for secret in (password, "wrong-Secret-42", access, refresh, access.split(".")[2], refresh.split(".")[2]):
        assert secret not in text


# transaction=True: event lines and metrics are emitted when the change commits (audit.services)
@pytest.mark.django_db(transaction=True)
def test_order_request_when_correlation_header_then_on_every_line_and_echoed(json_logs, client_for, trader):
    client = client_for(trader)
    correlation = str(uuid.uuid4())
    response = client.post("/api/v1/orders", order_body(), format="json", HTTP_X_CORRELATION_ID=correlation)
    assert response.status_code == 200
    assert response["X-Correlation-ID"] == correlation == response.json()["correlation_id"]
    order_id = response.json()["order_id"]

    mine = [line for line in json_logs.lines() if line.get("correlation_id") == correlation]
    by_event = {line["event"]: line for line in mine}
    assert {"request_finished", "order_created", "risk_check_started", "risk_check_passed"} <= set(by_event)
    finished = by_event["request_finished"]
    assert finished["component"] == "http" and finished["user_id"] == "trader1"
    assert finished["details"]["code"] == 200 and finished["details"]["request"] == "POST /api/v1/orders"
    for name in ("order_created", "risk_check_started", "risk_check_passed"):
        line = by_event[name]
        assert (line["component"], line["order_id"], line["user_id"]) == ("audit", order_id, "trader1")
        assert line["details"]["event_type"] == name.upper()
    assert by_event["order_created"]["details"]["payload"]["symbol"] == "AAPL"
    # Lines of the login request before it carry another id, none carries no id at all.
    assert all(line.get("correlation_id") for line in json_logs.lines() if line["component"] in ("http", "audit"))


def test_order_request_when_a_forwarded_for_header_is_sent_then_lines_carry_the_address_the_trail_records(
    json_logs, client_for, trader
):
    # A client's own X-Forwarded-For is no address: the request line says what the audit event says.
    client = client_for(trader)
    response = client.post("/api/v1/orders", order_body(), format="json", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert response.status_code == 200
    from audit.models import Event, EventType

    created = Event.objects.get(event_type=EventType.ORDER_CREATED, order_id=response.json()["order_id"])
    finished = json_logs.events("request_finished")[-1]
    assert created.address == "127.0.0.1"
    assert finished["details"]["ip"] == created.address


@pytest.mark.django_db
def test_request_when_no_correlation_header_then_new_id_echoed_and_logged(json_logs, api):
    response = api.get("/api/v1/")
    echoed = response["X-Correlation-ID"]
    assert uuid.UUID(echoed)
    assert json_logs.events("request_finished")[-1]["correlation_id"] == echoed


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "not-a-uuid",
        "123e4567-e89b-12d3-a456-426614174000\r\nX-Injected: yes",
        "123e4567-e89b-12d3-a456-426614174000\nSet-Cookie: a=b",
        "<script>alert(1)</script>",
        "x" * 300,
    ],
)
def test_correlation_header_when_malformed_then_replaced_never_echoed_or_logged(json_logs, api, header):
    response = api.get("/api/v1/", HTTP_X_CORRELATION_ID=header)
    echoed = response["X-Correlation-ID"]
    assert uuid.UUID(echoed) and echoed != header
    assert "\r" not in echoed and "\n" not in echoed
    assert all("Injected" not in value and "Set-Cookie" not in name for name, value in response.items())
    line = json_logs.events("request_finished")[-1]
    assert line["correlation_id"] == echoed
    assert header not in json_logs.text and "Injected" not in json_logs.text


@pytest.mark.django_db
def test_task_when_run_eagerly_inside_a_request_context_then_bound_for_the_task_and_restored_after(json_logs):
    import structlog

    from core import metrics
    from orders.tasks import order_execute

    structlog.contextvars.bind_contextvars(correlation_id="the-request", request_id="r1")
    task_correlation, order_id = str(uuid.uuid4()), str(uuid.uuid4())
    skipped = metrics.EXECUTION_SECONDS.labels("SKIPPED")
    before = sum(b.get() for b in skipped._buckets)
    try:
        order_execute.apply(args=[order_id], kwargs={"correlation_id": task_correlation})
        assert structlog.contextvars.get_contextvars() == {"correlation_id": "the-request", "request_id": "r1"}
    finally:
        structlog.contextvars.clear_contextvars()
    line = next(line for line in json_logs.lines() if "unknown order" in line["event"])
    assert (line["correlation_id"], line["order_id"]) == (task_correlation, order_id)
    assert line["details"]["task"] == "orders.execute" and line["details"]["request_id"] == "r1"
    assert sum(b.get() for b in skipped._buckets) == before + 1  # itirp_execution_seconds{outcome="SKIPPED"}


@pytest.mark.django_db
def test_task_arguments_when_bound_for_the_log_context_then_the_signature_worked_out_once(monkeypatch):
    import inspect

    from itirp import celery as itirp_celery
    from orders.tasks import order_execute

    made = []
    real = inspect.signature
    monkeypatch.setattr(inspect, "signature", lambda *a, **k: made.append(1) or real(*a, **k))
    itirp_celery._signature.cache_clear()
    for _ in range(3):
        order_execute.apply(args=[str(uuid.uuid4())], kwargs={"correlation_id": str(uuid.uuid4())})
    assert len(made) == 1


# --- The developer console (LOG_FORMAT=console, make run) and quiet periodic tasks -----------------------


def test_formatter_when_log_format_unset_then_json_and_console_only_when_asked(monkeypatch):
    from core.logs import ConsoleFormatter, formatter

    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert type(formatter()) is JsonFormatter
    assert type(formatter("json")) is JsonFormatter
    assert type(formatter("console")) is ConsoleFormatter
    monkeypatch.setenv("LOG_FORMAT", "console")  # gunicorn's master reads it from the environment
    assert type(formatter()) is ConsoleFormatter
    with pytest.raises(ValueError, match="LOG_FORMAT must be json or console"):
        formatter("xml")


def _console_line(colors: bool, **fields) -> str:
    import io

    from core.logs import ConsoleFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ConsoleFormatter(colors=colors))
    logger = logging.getLogger("itirp.console-test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        get_logger("console-test").info("order_created", **fields)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_console_line_when_event_logged_then_one_short_human_line_secrets_still_redacted():
    order_id, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    text = _console_line(
        False,
        order_id=order_id,
        correlation_id=correlation,
        user_id="trader1",
        details={"event_id": str(uuid.uuid4()), "payload": {"symbol": "AAPL", "side": "BUY"}},
        password="hunter2-secret",
    )

    assert text.count("\n") == 1 and "{" not in text.split("password")[0]  # not JSON
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} INFO +test +console-test +order_created ", text)
    assert f"order={order_id[:8]}" in text and f"cid={correlation[:8]}" in text
    assert "user=trader1" in text and "symbol=AAPL side=BUY" in text
    assert "event_id" not in text and order_id not in text
    assert "hunter2-secret" not in text and REDACTED in text
    assert "\x1b[" not in text


@pytest.mark.django_db
def test_console_line_when_an_audit_event_then_rendered_from_its_prepared_line():
    import io

    from core.logs import ConsoleFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ConsoleFormatter(colors=False))
    audit = logging.getLogger("itirp.audit")
    audit.addHandler(handler)
    level, audit.level = audit.level, logging.INFO
    event = Event(
        event_type=EventType.ORDER_CREATED,
        sequence=3,
        event_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        correlation_id=uuid.uuid4(),
        actor_username="trader1",
        symbol="AAPL",
        payload={"symbol": "AAPL", "side": "BUY", "token": "t-123456789"},
    )
    try:
        events_logged([event])
    finally:
        audit.removeHandler(handler)
        audit.level = level
    text = stream.getvalue()
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} INFO +test +audit +order_created ", text), text
    assert f"order={str(event.order_id)[:8]}" in text and "symbol=AAPL side=BUY" in text
    assert "t-123456789" not in text and REDACTED in text


def test_console_line_when_colours_wanted_then_level_coloured():
    assert "\x1b[32mINFO" in _console_line(True, symbol="AAPL")


def test_console_selected_by_log_format_in_a_real_process_json_otherwise(tmp_path):
    import os
    import subprocess
    import sys

    from django.conf import settings

    code = "import django; django.setup(); import logging; logging.getLogger('itirp.x').warning('hello_console')"
    lines = {}
    for kind in ("console", "json"):
        env = {**os.environ, "LOG_FORMAT": kind, "ITIRP_VAR_DIR": str(tmp_path), "LOG_COLOR": "0"}
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        lines[kind] = result.stderr.strip().splitlines()[-1]
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} WARNING +\S+ +x +hello_console$", lines["console"])
    assert json.loads(lines["json"])["event"] == "hello_console"


# Celery's own lines, as celery.app.trace, celery.worker.strategy and celery.beat write them.
def _celery_succeeded(name: str, return_value: str) -> None:
    from celery.app.trace import LOG_SUCCESS

    context = {"id": "t1", "name": name, "runtime": 0.01, "return_value": return_value}
    logging.getLogger("celery.app.trace").info(LOG_SUCCESS, context, extra={"data": context})


def _celery_received(name: str) -> None:
    from celery.app.trace import LOG_RECEIVED

    context = {"id": "t1", "name": name, "args": "()", "kwargs": "{}", "eta": None}
    logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, context, extra={"data": context})


def test_periodic_tasks_when_they_did_nothing_then_nothing_at_info(json_logs):
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", "orders-sweep-stuck", "x")
    for name in ("orders.sweep_stuck", "audit.seal", "risk.exposure_snapshot", "audit.verify"):
        _celery_received(name)
    _celery_succeeded("orders.sweep_stuck", "0")
    _celery_succeeded("audit.seal", "0")
    _celery_succeeded("risk.exposure_snapshot", "None")
    _celery_succeeded("orders.execute", "'SKIPPED'")  # the order went with another's execution group
    assert json_logs.text == ""

    # What did something stays: a sweep that re-queued, a seal written, and every order's own task lines.
    _celery_succeeded("orders.sweep_stuck", "2")
    _celery_succeeded("audit.seal", "1")
    _celery_received("orders.execute")
    _celery_succeeded("orders.execute", "'EXECUTED'")
    events = [line["event"] for line in json_logs.lines()]
    assert len(events) == 4 and all(line["level"] == "INFO" for line in json_logs.lines())
    assert "orders.sweep_stuck" in events[0] and events[0].endswith(": 2")


def test_periodic_tasks_when_log_level_debug_then_their_lines_are_debug_lines(json_logs):
    beat = logging.getLogger("celery.beat")
    beat.setLevel(logging.DEBUG)
    try:
        beat.info("Scheduler: Sending due task %s (%s)", "audit-seal", "audit.seal")
    finally:
        beat.setLevel(logging.NOTSET)
    assert [(line["level"], line["event"]) for line in json_logs.lines()] == [
        ("DEBUG", "Scheduler: Sending due task audit-seal (audit.seal)")
    ]


@pytest.mark.django_db
def test_periodic_tasks_when_run_by_celery_on_an_idle_platform_then_nothing_at_info(json_logs):
    from audit.tasks import audit_seal
    from orders.tasks import orders_sweep_stuck

    assert orders_sweep_stuck.apply().get() == 0
    assert audit_seal.apply().get() == 0
    assert json_logs.text == ""
