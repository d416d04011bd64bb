"""JSON log lines: their shape, secrets never written, and the request's correlation id on every line."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest

from core.logs import REDACTED, JsonFormatter, get_logger, redact
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
