"""Issue 20, item 5: chunked request bodies (through a real web server), a request line for every answer (413
included), and the order throttle's per-process fallback while Redis is unreachable."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from core.throttling import LocalWindow, RemoteOutage
from orders import apis as order_apis
from tests.conftest import PASSWORDS
from tests.observability.conftest import json_logs  # noqa: F401 - the fixture, shared
from tests.support.web import SERVERS, web_command
from tests.support.worker import ROOT, stop, worker_env

ORDER = {"symbol": "AAPL", "side": "BUY", "quantity": "1", "price": "10"}


def _finished(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == "request_finished"]


# --- a request line for every answer ------------------------------------------------------------------------
@pytest.mark.django_db
def test_body_over_the_limit_when_refused_413_then_its_request_line_is_written(json_logs, trader, client_for):  # noqa: F811
    client = client_for(trader)
    raw = json.dumps({**ORDER, "strategy": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}).encode()
    before = len(_finished(json_logs.lines()))
    response = client.generic("POST", "/api/v1/orders", raw, content_type="application/json")
    assert response.status_code == 413
    lines = _finished(json_logs.lines())[before:]
    assert len(lines) == 1, lines
    assert lines[0]["details"]["code"] == 413 and lines[0]["details"]["request"] == "POST /api/v1/orders"
    assert lines[0]["correlation_id"] == response["X-Correlation-ID"]
    assert lines[0]["details"]["duration_ms"] >= 0


@pytest.mark.django_db
def test_answer_through_the_views_when_logged_then_exactly_one_request_line(json_logs, trader, client_for):  # noqa: F811
    client = client_for(trader)
    before = len(_finished(json_logs.lines()))
    assert client.get("/api/v1/orders").status_code == 200
    assert [line["details"]["code"] for line in _finished(json_logs.lines())[before:]] == [200]


# --- the order throttle while Redis is unreachable -------------------------------------------------------------
@pytest.fixture
def throttle_redis_unreachable(monkeypatch) -> Iterator[None]:
    """The throttle's Redis client pointed at a port nothing listens on: the boundary, not a mock of it."""
    import redis

    from core import throttling

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = redis.Redis(port=port, socket_connect_timeout=0.1).register_script(throttling._SLIDING_WINDOW)
    monkeypatch.setattr(throttling, "_script", lambda: script)
    monkeypatch.setattr(order_apis.OrderSubmitThrottle, "local", LocalWindow())
    monkeypatch.setattr(order_apis.OrderSubmitThrottle, "outage", RemoteOutage("order throttle", order_apis.logger))
    monkeypatch.setattr(order_apis.OrderSubmitThrottle, "THROTTLE_RATES", {"orders": "5/min"})
    yield


@pytest.mark.django_db
def test_order_throttle_when_redis_down_then_per_process_limit_and_one_log_line(
    throttle_redis_unreachable, trader, client_for, caplog
):
    client = client_for(trader)
    caplog.set_level(logging.WARNING, logger="itirp.orders")
    codes = [
        client.post("/api/v1/orders", {**ORDER, "price": str(10 + n)}, format="json").status_code for n in range(8)
    ]
    assert codes == [200] * 5 + [429] * 3
    outage_lines = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(outage_lines) == 1, [r.getMessage() for r in caplog.records]


def test_local_window_slides_and_keys_are_separate():
    window = LocalWindow()
    assert [window.hit("a", duration=10, limit=2, now=t) for t in (0, 1)] == [0, 0]
    assert window.hit("a", duration=10, limit=2, now=2) == pytest.approx(8)
    assert window.hit("b", duration=10, limit=2, now=2) == 0
    assert window.hit("a", duration=10, limit=2, now=10.5) == 0  # the first hit left the window


# --- chunked bodies through a real web server (production's, and gunicorn) ----------------------------------------
@pytest.fixture(params=SERVERS)
def web_url(request: pytest.FixtureRequest, transactional_db) -> Iterator[tuple[str, Path]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = Path(os.environ.get("ITIRP_VAR_DIR", "/tmp")) / f"{request.param}-edges-{os.getpid()}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in finally
    cmd = web_command(request.param, port)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=worker_env(ITIRP_PROCESS="web"), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url + "/api/v1/health/live", timeout=1)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{request.param} did not start:\n{log_path.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield url, log_path
    finally:
        stop(proc)
        log.close()


def _chunks(raw: bytes, size: int = 7) -> Iterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


@pytest.mark.slow
def test_chunked_body_through_the_server_when_valid_then_read_and_when_too_large_then_413_logged(web_url, trader):
    import requests

    url, log_path = web_url
    login = requests.post(
        url + "/api/v1/auth/login",
        json={"username": trader.username, "password": PASSWORDS["TRADER"]},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}", "Content-Type": "application/json"}
    raw = json.dumps({**ORDER, "client_order_id": "chunked-1"}).encode()
    sent = requests.post(url + "/api/v1/orders", data=_chunks(raw), headers=headers, timeout=10)
    assert sent.request.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in sent.request.headers
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "APPROVED"

    big = json.dumps({**ORDER, "strategy": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}).encode()
    refused = requests.post(url + "/api/v1/orders", data=_chunks(big, 4096), headers=headers, timeout=10)
    assert refused.status_code == 413, refused.text
    assert refused.json()["code"] == "too_large"
    from orders.models import Order

    assert Order.objects.filter(user=trader).count() == 1

    deadline = time.monotonic() + 10
    codes: list[int] = []
    while time.monotonic() < deadline and 413 not in codes:
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        codes = [line["details"]["code"] for line in _finished(lines) if "/api/v1/orders" in line["details"]["request"]]
        time.sleep(0.2)
    assert codes == [200, 413], codes
