"""Real processes: a Celery worker's lines carry the request's correlation id and its metrics reach /metrics;
gunicorn with two workers writes only JSON lines and every scrape sums both workers (ecosystem.md, pitfall 9).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from orders.models import Order, OrderStatus
from tests.observability.conftest import FAST_VENUE, order_body, parse_exposition, sample, scrape, wait_for
from tests.support.ports import free_port
from tests.support.web import SERVERS, web_command
from tests.support.worker import ROOT, celery_worker, stop, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(180)]

PORT = free_port()
CELERY_RAW = re.compile(r"^worker: .* shutdown|^Please specify|^absolutely not|^User information|^\s*_warn")


def json_lines_after_ready(text: str) -> list[dict]:
    """The worker's lines from its "ready." line on: every one must be JSON (before it: Celery's banner,
    which the fixture does not silence with --quiet as Procfile.dev and docker-compose.yml do)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{") and " ready." in line)
    parsed = []
    for line in lines[start:]:
        if not line.strip() or CELERY_RAW.match(line):
            continue  # Celery writes its shutdown notice from a signal handler, bypassing logging
        parsed.append(json.loads(line))
    return parsed


@pytest.mark.django_db(transaction=True)
def test_order_executed_by_worker_when_correlation_header_then_same_id_in_web_and_worker_lines(
    json_logs, client_for, trader, redis_db
):
    client = client_for(trader)
    correlation = str(uuid.uuid4())
    before = scrape(client)
    with celery_worker(name="obs-corr", **FAST_VENUE) as worker:
        response = client.post("/api/v1/orders", order_body(), format="json", HTTP_X_CORRELATION_ID=correlation)
        order_id = response.json()["order_id"]
        wait_for(lambda: Order.objects.get(pk=order_id).status == OrderStatus.EXECUTED, what="order executed")
        wait_for(lambda: "execution_completed" in worker.log_path.read_text(), what="worker line")
    after = scrape(client)

    web = [line for line in json_logs.lines() if line.get("correlation_id") == correlation]
    assert {"request_finished", "order_created", "risk_check_passed"} <= {line["event"] for line in web}
    assert {line["process"] for line in web} == {"test"}

    lines = json_lines_after_ready(worker.log_path.read_text())
    assert all({"timestamp", "level", "component", "event", "process"} <= set(line) for line in lines)
    mine = [line for line in lines if line.get("correlation_id") == correlation]
    audit = {line["event"]: line for line in mine if line["component"] == "audit"}
    assert {"execution_started", "execution_completed"} <= set(audit)
    assert all(line["order_id"] == order_id and line["process"] == "worker" for line in audit.values())
    # One line per event at INFO: the execution's own lines that said the same again are DEBUG.
    assert [line["event"] for line in mine if line["event"] in ("execution_started", "execution_completed")] == [
        "execution_started",
        "execution_completed",
    ]
    # Celery's own line for the task is bound too (task_prerun), not only the lines that pass ids explicitly.
    succeeded = [line for line in mine if line["component"] == "celery.app.trace" and "succeeded" in line["event"]]
    assert succeeded and succeeded[0]["order_id"] == order_id and succeeded[0]["details"]["task"] == "orders.execute"
    # No correlation id leaks into the lines of the next task (cleared after each task).
    assert not [line for line in lines if line.get("task_id") and line.get("correlation_id") != correlation]

    # Recorded by the worker process, summed into this process's /metrics through the shared directory.
    assert (
        sample(after, "itirp_orders_total", status="EXECUTED") - sample(before, "itirp_orders_total", status="EXECUTED")
        == 1
    )
    assert (
        sample(after, "itirp_execution_seconds_count", outcome="EXECUTED")
        - sample(before, "itirp_execution_seconds_count", outcome="EXECUTED")
        == 1
    )


@pytest.mark.django_db(transaction=True)
def test_order_when_venue_fails_once_then_retry_counted_and_logged_by_the_worker(client_for, trader, redis_db):
    client = client_for(trader)
    before = scrape(client)
    worker_settings = {**FAST_VENUE, "VENUE_SCRIPT": "fail,ok", "VENUE_SCRIPT_SCOPE": "order"}
    with celery_worker(name="obs-retry", **worker_settings) as worker:
        order_id = client.post("/api/v1/orders", order_body(), format="json").json()["order_id"]
        wait_for(lambda: Order.objects.get(pk=order_id).status == OrderStatus.EXECUTED, what="order executed")
        wait_for(lambda: "execution_completed" in worker.log_path.read_text(), what="worker line")
    after = scrape(client)
    assert sample(after, "itirp_execution_retries_total") - sample(before, "itirp_execution_retries_total") == 1
    assert (
        sample(after, "itirp_execution_seconds_count", outcome="RETRY")
        - sample(before, "itirp_execution_seconds_count", outcome="RETRY")
        == 1
    )
    retried = [
        line
        for line in json_lines_after_ready(worker.log_path.read_text())
        if line["event"] == "execution_attempt_failed" and line["component"] == "audit"
    ]
    assert len(retried) == 1 and retried[0]["level"] == "WARNING" and retried[0]["order_id"] == order_id
    assert retried[0]["details"]["payload"]["will_retry"] is True


def _get(path: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=timeout) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# What each server writes when a worker process starts: its component and event.
_STARTED = {"serve": ("granian", "Started worker"), "gunicorn": ("gunicorn", "Booting worker")}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("server", SERVERS)
def test_web_server_when_two_workers_then_every_scrape_sums_both_and_every_line_is_json(tmp_path, server):
    prom = tmp_path / "prom"
    log_path = tmp_path / f"{server}.log"
    env = worker_env(PROMETHEUS_MULTIPROC_DIR=str(prom), LOG_LEVEL="INFO")
    cmd = web_command(server, PORT, workers=2)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Probed on an unrouted path, so the probes (however many) never count as requests to "/".
        wait_for(lambda: proc.poll() is None and _answers("/probe"), timeout=30, what=f"{server} answering")
        sent = 0
        # A slow request (health: its workers ping waits) keeps one worker busy, so the other serves "/".
        for _ in range(3):
            slow = threading.Thread(target=_get, args=("/api/v1/health",))
            slow.start()
            time.sleep(0.15)
            assert _get("/")[0] == 200
            sent += 1
            slow.join()
        for _ in range(10):
            assert _get("/")[0] == 200
            sent += 1
        pids = {name.rsplit("-", 1)[1] for name in os.listdir(prom) if name.startswith("histogram_")}
        assert len(pids) >= 2, pids  # both workers recorded requests
        roots, scrapes = [], []
        for _ in range(6):
            status, text = _get("/metrics")
            assert status == 200
            samples = parse_exposition(text)
            roots.append(sample(samples, "itirp_http_request_seconds_count", method="GET", view="root", status="2xx"))
            scrapes.append(
                sample(
                    samples, "itirp_http_request_seconds_count", method="GET", view="prometheus-metrics", status="2xx"
                )
            )
        assert roots == [sent] * 6  # whichever worker answers, the sum of both
        assert scrapes == [0, 1, 2, 3, 4, 5]
    finally:
        stop(proc)
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line of the web processes is one JSON object
    assert any(line["event"] == "request_finished" and line["process"] == "web" for line in parsed)
    component, started = _STARTED[server]
    assert any(line["component"] == component and started in line["event"] for line in parsed)


def _answers(path: str) -> bool:
    try:
        return _get(path, timeout=2)[0] > 0
    except OSError:
        return False


def test_worker_main_process_when_started_then_prepares_the_metrics_directory(tmp_path):
    """worker_init clears dead processes' files before the pool forks (itirp/celery.py)."""
    from core import metrics

    stale = Path(tmp_path) / f"counter_{metrics.process_identifier(2**22 + 7)}.db"
    stale.write_bytes(b"")
    env = worker_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    code = "from celery import signals; import itirp; signals.worker_init.send(sender=None); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert not stale.exists()


def test_gunicorn_logger_when_no_access_log_asked_then_no_access_atoms_built(monkeypatch):
    # gunicorn counts the access log as enabled once logconfig_dict is set, and built every request's atoms for
    # gunicorn.access to drop at WARNING; request_finished is the access line. Asked for, it is written.
    import runpy
    from types import SimpleNamespace

    from gunicorn import glogging
    from gunicorn.config import Config

    monkeypatch.setenv("ITIRP_PROCESS", os.environ.get("ITIRP_PROCESS", "test"))
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    config = Config()
    config.set("logger_class", conf["logger_class"])
    assert config.logger_class is conf["logger_class"] and conf["accesslog"] is None and conf["logconfig_dict"]
    written = []
    monkeypatch.setattr(glogging.Logger, "access", lambda self, *args: written.append(args))
    logger = conf["logger_class"].__new__(conf["logger_class"])
    logger.cfg = SimpleNamespace(accesslog=conf["accesslog"])
    logger.access(None, None, {}, 0.01)
    assert written == []
    logger.cfg = SimpleNamespace(accesslog="-")
    logger.access(None, None, {}, 0.01)
    assert len(written) == 1
