"""Alert delivery delay, measured end to end on real processes: gunicorn (the web of Procfile.dev) and the
evaluator (manage.py run_alerts) on PostgreSQL and Redis. A risk manager's SSE client holds GET /alerts/stream;
another risk manager halts and resumes the firm through the API; each alert is timed from its cause event's
timestamp to its row, and to the moment the client read it; then acknowledged so the next halt alerts again.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itirp_al REDIS_URL=redis://127.0.0.1:6379/15 \\
        .venv/bin/python bench/bench_alerts.py --rounds 20
"""

# ruff: noqa: S603, T201 - a local script: our own commands, our own 127.0.0.1 servers

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servers import BIN, on_signal, spawn, stop_all, wait_http  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

PASSWORD = "bench-alerts-1"


def parse(ts: str) -> float:
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def users(env: dict[str, str]) -> None:
    code = (
        "from accounts.models import User\nfrom accounts import services\n"
        "for name in ('bench_rm1', 'bench_rm2'):\n"
        "    if not User.objects.filter(username=name).exists():\n"
        f"        services.user_create(actor=None, username=name, password={PASSWORD!r}, role='RISK_MANAGER')\n"
    )
    subprocess.run([str(BIN / "python"), "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True)


def token(base: str, username: str) -> str:
    r = requests.post(f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD}, timeout=10)
    r.raise_for_status()
    return r.json()["access_token"]


def listen(base: str, bearer: str, out: queue.Queue, stop: threading.Event) -> None:
    """An SSE client: reconnects when the stream's lifetime ends, with Last-Event-ID, like a browser."""
    last = ""
    while not stop.is_set():
        try:
            last = _listen_once(base, bearer, out, stop, last)
        except requests.RequestException:
            if not stop.is_set():
                raise


def _listen_once(base: str, bearer: str, out: queue.Queue, stop: threading.Event, last: str) -> str:
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "text/event-stream"}
    if last:
        headers["Last-Event-ID"] = last
    with requests.get(f"{base}/api/v1/alerts/stream", headers=headers, stream=True, timeout=60) as r:
        for line in r.iter_lines(decode_unicode=True):
            if stop.is_set():
                return last
            if line.startswith("id: "):
                last = line[4:]
            elif line.startswith("data: "):
                out.put((time.time(), json.loads(line[6:])))
    return last


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        raise SystemExit("set DATABASE_URL and REDIS_URL (PostgreSQL and Redis: the production topology)")
    signal.signal(signal.SIGTERM, on_signal)
    env = {**os.environ, "DEBUG": "1", "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "itirp.settings"}
    subprocess.run([str(BIN / "python"), "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    users(env)
    logs = ROOT / "var" / "bench-alerts"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        web_log = logs / "web.log"
        web = spawn(
            [
                str(BIN / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "itirp.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--no-control-socket",
            ],
            {**env, "ITIRP_PROCESS": "web"},
            web_log,
        )
        wait_http(f"{base}/api/v1/health", web, web_log)
        alerts_log = logs / "alerts.log"
        evaluator = spawn(
            [str(BIN / "python"), "-u", "manage.py", "run_alerts"], {**env, "LOG_LEVEL": "INFO"}, alerts_log
        )
        time.sleep(3)  # its first pass places the cursor at the trail's end
        if evaluator.poll() is not None:
            raise SystemExit(alerts_log.read_text()[-3000:])
        rm1, rm2 = token(base, "bench_rm1"), token(base, "bench_rm2")
        received: queue.Queue = queue.Queue()
        stop = threading.Event()
        threading.Thread(target=listen, args=(base, rm1, received, stop), daemon=True).start()
        time.sleep(1.5)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {rm2}"
        ack = requests.Session()
        ack.headers["Authorization"] = f"Bearer {rm1}"
        to_row, to_client, total = [], [], []
        for i in range(args.rounds):
            for state in ("HALTED", "ACTIVE"):
                r = session.post(
                    f"{base}/api/v1/risk/trading-state",
                    json={"scope": "firm", "state": state, "reason": f"bench round {i}"},
                    timeout=10,
                )
                r.raise_for_status()
                while True:
                    at, alert = received.get(timeout=10)
                    if (
                        alert["kind"] == "TRADING_STATE"
                        and alert["message"].endswith(f"bench round {i}")
                        and state in alert["message"]
                    ):
                        break
                cause, row = parse(alert["cause_timestamp"]), parse(alert["timestamp"])
                to_row.append((row - cause) * 1000)
                to_client.append((at - row) * 1000)
                total.append((at - cause) * 1000)
                ack.post(
                    f"{base}/api/v1/alerts/{alert['alert_id']}/ack", json={"note": "bench"}, timeout=10
                ).raise_for_status()
        stop.set()
        n = len(total)
        print(f"\nalert delivery delay over {n} alerts (ms; poll {os.environ.get('ALERTS_POLL_SECONDS', '0.25')} s)")
        print(f"{'':28}{'p50':>8}{'p95':>8}{'max':>8}")
        for name, values in (
            ("cause event -> alert row", to_row),
            ("alert row -> SSE client", to_client),
            ("cause event -> SSE client", total),
        ):
            print(f"{name:28}{pct(values, 50):8.0f}{pct(values, 95):8.0f}{max(values):8.0f}")
        print(f"within 5 s: {sum(t < 5000 for t in total)}/{n}; load average {os.getloadavg()[0]:.2f}")
    finally:
        stop_all()


if __name__ == "__main__":
    main()
