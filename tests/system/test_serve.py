"""itirp.serve, the web server (granian): what gunicorn.conf.py gave production, kept; the deployments run it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from itirp import serve
from tests.conftest import PASSWORDS
from tests.support.ports import free_port
from tests.support.web import web_command
from tests.support.worker import ROOT, stop, worker_env


def test_options_when_given_or_from_the_environment_then_bind_workers_threads(monkeypatch):
    assert vars(serve.options(["--bind", "0.0.0.0:8000"])) == {
        "bind": "0.0.0.0:8000",
        "workers": 1,
        "threads": 8,
        "host": "0.0.0.0",
        "port": 8000,
    }
    monkeypatch.setenv("WEB_BIND", "127.0.0.1:9001")
    monkeypatch.setenv("WEB_WORKERS", "2")
    monkeypatch.setenv("WEB_THREADS", "4")
    args = serve.options([])
    assert (args.host, args.port, args.workers, args.threads) == ("127.0.0.1", 9001, 2, 4)


@pytest.mark.parametrize("argv", [["--bind", "8000"], ["--bind", "host:port"], ["--workers", "0"], ["--threads", "0"]])
def test_options_when_malformed_then_refused_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        serve.options(argv)
    assert exited.value.code == 2 and "--bind HOST:PORT" in capsys.readouterr().err


def test_logging_when_configured_then_the_servers_loggers_json_and_no_access_log():
    config = serve.logging_config("info")
    assert config["formatters"]["json"] == {"()": "core.logs.formatter"}
    assert config["loggers"]["_granian"]["handlers"] == ["console"]
    assert config["loggers"]["granian.access"] == {"handlers": [], "level": "WARNING", "propagate": False}


def test_deployments_when_they_start_the_web_then_through_itirp_serve():
    procfile = (ROOT / "Procfile.dev").read_text()
    assert re.search(r"^web: \.venv/bin/python -m itirp\.serve --bind 127\.0\.0\.1:\$\{ITIRP_PORT\}$", procfile, re.M)
    assert 'CMD ["python", "-m", "itirp.serve", "--bind", "0.0.0.0:8000"]' in (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    assert 'command: ["python", "-m", "itirp.serve", "--bind", "0.0.0.0:8000"]' in compose
    assert "gunicorn" not in procfile + compose


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - a local test server
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _wait(what: str, ready, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_server_when_run_then_answers_respawns_a_killed_worker_and_ends_cleanly_on_sigterm(tmp_path, trader):
    from core import metrics

    prom = tmp_path / "prom"
    prom.mkdir()
    stale = prom / f"counter_{metrics.process_identifier(2**22 + 11)}.db"  # a dead process of this host
    stale.write_bytes(b"")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "web.log"
    env = worker_env(PROMETHEUS_MULTIPROC_DIR=str(prom), LOG_LEVEL="INFO")
    env.pop("ITIRP_PROCESS", None)  # itirp.serve says what it is
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            web_command("serve", port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait("the server answering", lambda: _get(url + "/") == 200)
        assert not stale.exists()  # the metrics directory cleared before the workers started
        login = urllib.request.Request(
            url + "/api/v1/auth/login",
            data=json.dumps({"username": trader.username, "password": PASSWORDS["TRADER"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(login, timeout=10) as response:  # noqa: S310
            token = json.loads(response.read())["access_token"]
        assert _get(url + "/api/v1/orders", token) == 200

        (worker,) = _children(proc.pid)
        os.kill(worker, signal.SIGKILL)
        _wait("a new worker", lambda: _children(proc.pid) - {worker})
        _wait("the new worker answering", lambda: _get(url + "/api/v1/orders", token) == 200)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=serve.GRACE_SECONDS + 10) == 0
    finally:
        stop(proc)
    lines = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    assert all(line["process"] == "web" for line in lines)  # every line one JSON object, from the web
    events = [(line["component"], line["event"]) for line in lines]
    assert ("web", "web server starting") in events
    assert sum(1 for c, e in events if c == "granian" and e.startswith("Started worker")) == 2  # started, restarted
    assert any(c == "granian" and "shutdown completed" in e for c, e in events)
    assert not any("Configuration allows spawning" in e for _, e in events)  # 8 threads measured best
    finished = [line for line in lines if line["event"] == "request_finished"]
    assert [line["details"]["code"] for line in finished if "/api/v1/orders" in line["details"]["request"]][-1] == 200
