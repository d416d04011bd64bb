"""Fault-test fixtures: a throw-away PostgreSQL cluster and Redis of our own (on free ports), with the
platform (the web server, Celery worker, beat) running against them as subprocesses, stopped and started by PID.

The machine's PostgreSQL (5432) and Redis (6379) are used by others at the same time and are never touched.
Everything started here is torn down by PID at the end of the session, whatever happened.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import port_from_env
from tests.support.web import web_command

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
# Free ports by default, so that no other run's servers (another checkout's fault tests, a stray process)
# can ever be mistaken for ours; HARDENING_*_PORT pins one.
PG_PORT = port_from_env("HARDENING_PG_PORT")
REDIS_PORT = port_from_env("HARDENING_REDIS_PORT")
WEB_PORT = port_from_env("HARDENING_WEB_PORT")
PASSWORD = "fault-pass-1"
BEAT_READY = "schedule read from the database"  # itirp/beat.py's line once beat has started


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str = "") -> Any:
    """Poll until predicate() is truthy; fail (never hang) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: CI and this machine run tests as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _kill_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class FaultStack:
    """The platform on its own PostgreSQL and Redis; each piece can be stopped and started again."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pgdata = base / "pgdata"
        self.logs = base / "logs"
        self.logs.mkdir()
        self.var = base / "var"
        self.var.mkdir()
        self.redis: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.pg_running = False
        self.url = f"http://127.0.0.1:{WEB_PORT}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_"))},
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{PG_PORT}/itirp_fault",
            "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
            "ITIRP_VAR_DIR": str(self.var),
            "PROMETHEUS_MULTIPROC_DIR": str(self.var / "metrics"),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "0",
            "SECURE_SSL_REDIRECT": "0",
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "INFO",
            # Fault drills need the sweeper quick and the venue fast and certain.
            "ORDER_STUCK_AFTER_SECONDS": "3",
            "ORDER_SWEEP_SECONDS": "2",
            "VENUE_LATENCY_MS": "30",
            "VENUE_SUCCESS_PROBABILITY": "1",
            "VENUE_MAX_SLIPPAGE": "0",
            "EXECUTION_RETRY_BACKOFF_SECONDS": "0.5,1,1",
            "EXECUTION_MAX_ATTEMPTS": "5",
            "BREAKER_FAILURE_THRESHOLD": "1000",
            "ORDER_DUPLICATE_WINDOW_SECONDS": "0",
            "AUDIT_SEAL_INTERVAL_SECONDS": "3600",
            "DB_CONNECT_TIMEOUT": "2",
        }
        self.tokens: dict[str, str] = {}
        self.restarts: list[tuple[str, int]] = []
        self.worker_extra: dict[str, str] = {}
        self._worker_custom = False  # a worker some test started its own way (not worker_start's defaults)

    # --- PostgreSQL -------------------------------------------------------------------------------------------
    def pg_init(self) -> None:
        self.pgdata.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.pgdata, "postgres")
            shutil.chown(self.logs, "postgres")
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.pg_start()
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "itirp_fault"],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def pg_start(self) -> None:
        opts = f"-p {PG_PORT} -c listen_addresses=127.0.0.1 -k {self.base} -c max_connections=100"
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-o", opts, "-l", str(self.logs / "pg.log"), "-w"]
                + ["-t", "60", "start"]
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
        self.pg_running = True

    def pg_stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60", "stop"]),
            check=True,
            capture_output=True,
            timeout=90,
        )
        self.pg_running = False

    def sql(self, query: str, *params: Any) -> list[tuple]:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{PG_PORT}/itirp_fault", connect_timeout=5) as conn:
            with conn.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall() if cursor.description else []

    # --- Redis ------------------------------------------------------------------------------------------------
    def redis_start(self) -> None:
        log = open(self.logs / "redis.log", "a")  # noqa: SIM115 - the process keeps it
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", str(self.var)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._redis_up, timeout=20, what="redis-server up")

    def _redis_up(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=REDIS_PORT, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def redis_stop(self) -> None:
        if self.redis is not None:
            _kill_group(self.redis, signal.SIGKILL)  # a crash, not a clean shutdown
            self.redis = None

    # --- the platform -------------------------------------------------------------------------------------------
    def manage(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _spawn(self, name: str, cmd: list[str], **extra: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 - the process keeps it
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**self.env, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def web_start(self) -> None:
        self.web = self._spawn("web", web_command("serve", WEB_PORT, workers=2))  # production's web server
        wait_for(self._web_up, timeout=60, what="the web server answering")

    def _web_up(self) -> bool:
        import requests

        if self.web is not None and self.web.poll() is not None:
            pytest.fail(f"the web server exited:\n{self.log_text('web')[-3000:]}")
        try:
            return requests.get(self.url + "/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def worker_default(self) -> None:
        """Put the fixture's own worker back (its sweeper on) if a test left another one running: a test that
        swaps the worker for its purpose (test_broker_outage.py pushes the sweeper out of the way) must not
        decide how the next test's stuck orders are recovered."""
        if self.worker is None or self.worker.poll() is not None or self.worker_extra or self._worker_custom:
            if self.worker is not None:
                self.worker_kill()
            self.worker_start()

    def worker_start(self, concurrency: int = 2, **extra: str) -> subprocess.Popen:
        marker = len(self.log_text("worker"))
        self.worker_extra = dict(extra)
        self._worker_custom = concurrency != 2
        self.worker = self._spawn(
            "worker",
            [sys.executable, "-m", "celery", "-A", "itirp", "worker", "--loglevel", "INFO", "--pool", "prefork"]
            + ["--concurrency", str(concurrency), "--hostname", "fault@%h"]
            + ["--without-gossip", "--without-mingle", "--without-heartbeat"],
            ITIRP_PROCESS="worker",
            **extra,
        )
        wait_for(
            lambda: " ready." in self.log_text("worker")[marker:] or self.worker.poll() is not None,
            timeout=60,
            what="celery worker ready",
        )
        if self.worker.poll() is not None:
            pytest.fail(f"worker exited:\n{self.log_text('worker')[-3000:]}")
        return self.worker

    def worker_kill(self) -> None:
        """SIGKILL the worker and its pool children at once (the whole process group), as a crash would."""
        if self.worker is not None:
            _kill_group(self.worker, signal.SIGKILL)
            self.worker = None

    def beat_start(self, *, wait: bool = True, loglevel: str = "INFO", **extra: str) -> None:
        """Start beat; with `wait`, until it has read its schedule from the database (itirp/beat.py): a drill
        that stops PostgreSQL right after the stack starts then finds beat running, not still importing."""
        marker = len(self.log_text("beat"))
        self.beat = self._spawn(
            "beat",
            [sys.executable, "-m", "celery", "-A", "itirp", "beat", "--loglevel", loglevel]
            + ["--schedule", str(self.var / "celerybeat-schedule")],
            ITIRP_PROCESS="beat",
            **extra,
        )
        if wait:
            self.beat_wait_ready(marker)

    def beat_wait_ready(self, marker: int, timeout: float = 60) -> None:
        """Wait until beat (started after `marker`, a length of its log) has read its schedule."""
        beat = self.beat
        assert beat is not None
        wait_for(
            lambda: BEAT_READY in self.log_text("beat")[marker:] or beat.poll() is not None,
            timeout=timeout,
            what="beat's schedule read",
        )
        if beat.poll() is not None:
            pytest.fail(f"beat exited:\n{self.log_text('beat')[-3000:]}")

    def stop_all(self) -> None:
        for proc in (self.beat, self.worker, self.web, self.redis):
            if proc is not None:
                _kill_group(proc)
        if self.pg_running:
            try:
                self.pg_stop("immediate")
            except (subprocess.SubprocessError, OSError):
                pass

    # --- the API ------------------------------------------------------------------------------------------------
    def login(self, username: str) -> str:
        import requests

        if username not in self.tokens:
            response = requests.post(
                self.url + "/api/v1/auth/login", json={"username": username, "password": PASSWORD}, timeout=10
            )
            assert response.status_code == 200, response.text
            self.tokens[username] = response.json()["access_token"]
        return self.tokens[username]

    def api(self, method: str, path: str, user: str = "trader_f", **kwargs: Any) -> Any:
        import requests

        headers = {"Authorization": f"Bearer {self.login(user)}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + "/api/v1" + path, headers=headers, timeout=30, **kwargs)

    def statuses(self) -> dict[str, int]:
        return dict(self.sql("SELECT status, count(*) FROM orders_order GROUP BY status"))

    def open_orders(self) -> int:
        return self.sql("SELECT count(*) FROM orders_order WHERE status IN ('APPROVED', 'EXECUTING')")[0][0]

    def revive(self) -> None:
        """What a process manager does (compose: restart unless-stopped): start a worker or beat that exited.

        Was needed when a Celery worker whose Redis broker vanished could exit with kombu's "Unrecoverable
        error: AttributeError('NoneType' object has no attribute 'hostname')" (guarded in itirp/celery.py since,
        and shown by test_broker_outage.py, which never revives); kept for any other exit.
        """
        if self.worker is not None and self.worker.poll() is not None:
            self.restarts.append(("worker", self.worker.returncode))
            self.worker_start(**self.worker_extra)
        if self.beat is not None and self.beat.poll() is not None:
            self.restarts.append(("beat", self.beat.returncode))
            self.beat_start(wait=False)

    def settle(self, timeout: float = 90) -> None:
        """Wait until no order is APPROVED or EXECUTING (the worker and the sweeper have done their part)."""

        def settled() -> bool:
            self.revive()
            return self.open_orders() == 0

        try:
            wait_for(settled, timeout=timeout, interval=0.5, what="orders settled")
        except pytest.fail.Exception as exc:
            raise AssertionError(f"{exc}\n{self.post_mortem()}") from None

    def post_mortem(self) -> str:
        """What a settle timeout needs explained: the open orders with their last events, who listens on the
        stack's ports, and the warnings and errors the processes logged last."""
        parts = []
        try:
            stuck = self.sql(
                "SELECT id, status, retry_count, updated_at, now() FROM orders_order "
                "WHERE status IN ('APPROVED', 'EXECUTING') ORDER BY updated_at LIMIT 5"
            )
            parts.append(f"open orders (oldest 5): {stuck}")
            for order_id, *_ in stuck[:2]:
                events = self.sql(
                    "SELECT sequence, event_type, payload::text, timestamp FROM audit_event "
                    "WHERE order_id = %s ORDER BY sequence",
                    order_id,
                )
                parts.append(f"events of {order_id}: {events}")
        except Exception as exc:  # noqa: BLE001 - a post-mortem reports what it can
            parts.append(f"database not readable: {exc!r}")
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=False).stdout
        ports = (f":{PG_PORT} ", f":{REDIS_PORT} ", f":{WEB_PORT} ")
        parts.append(
            "listening: " + " | ".join(line for line in listening.splitlines() if any(p in line for p in ports))
        )
        parts.append(
            f"processes alive: worker={self.worker and self.worker.poll() is None} "
            f"beat={self.beat and self.beat.poll() is None} restarts={self.restarts}"
        )
        for name in ("worker", "beat"):
            noteworthy = [line[:400] for line in self.log_text(name).splitlines() if '"level":"INFO"' not in line]
            parts.append(f"last lines of {name} (INFO left out):\n" + "\n".join(noteworthy[-15:]))
        return "\n".join(parts)

    def assert_consistent(self) -> None:
        """Each order filled at most once; EXECUTED orders have exactly one fill; `replay_events --verify` passes."""
        twice = self.sql("SELECT order_id, count(*) FROM orders_fill GROUP BY order_id HAVING count(*) > 1")
        assert not twice, f"orders filled twice: {twice}"
        unfilled = self.sql(
            "SELECT o.id FROM orders_order o LEFT JOIN orders_fill f ON f.order_id = o.id "
            "WHERE o.status = 'EXECUTED' AND f.id IS NULL"
        )
        assert not unfilled, f"EXECUTED without a fill: {unfilled}"
        stray = self.sql(
            "SELECT o.id, o.status FROM orders_order o JOIN orders_fill f ON f.order_id = o.id "
            "WHERE o.status <> 'EXECUTED'"
        )
        assert not stray, f"fills on orders not EXECUTED: {stray}"
        completed_twice = self.sql(
            "SELECT order_id FROM audit_event WHERE event_type = 'EXECUTION_COMPLETED' "
            "GROUP BY order_id HAVING count(*) > 1"
        )
        assert not completed_twice, completed_twice
        verify = self.manage("replay_events", "--verify")
        assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[FaultStack]:
    for tool in (PG_BIN / "initdb", PG_BIN / "pg_ctl", Path(shutil.which("redis-server") or "/nonexistent")):
        if not tool.exists():
            pytest.fail(f"fault tests need {tool} (PostgreSQL 15 server binaries, redis-server)")
    base = Path(tempfile.mkdtemp(prefix="itirp-faults-"))
    stack = FaultStack(base)
    try:
        stack.pg_init()
        stack.redis_start()
        migrate = stack.manage("migrate", "--noinput")
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        script = (
            "from accounts import services as s\n"
            f"s.user_create(actor=None, username='trader_f', password='{PASSWORD}', role='TRADER')\n"
            f"s.user_create(actor=None, username='trader_g', password='{PASSWORD}', role='TRADER')\n"
            f"s.user_create(actor=None, username='risk_f', password='{PASSWORD}', role='RISK_MANAGER')\n"
            # the drills' market: their symbols at their orders' price (order_body)
            "from tests.support.market import list_for_drills\n"
            "list_for_drills(['FLT', *(f'S{i}' for i in range(7))], '10')\n"
        )
        users = stack.manage("shell", "-c", script)
        assert users.returncode == 0, users.stderr[-3000:]
        stack.web_start()
        stack.worker_start()
        stack.beat_start()
        yield stack
    finally:
        stack.stop_all()
        # The processes' logs outlive the stack, for a failure's post-mortem.
        keep = Path(os.environ.get("ITIRP_VAR_DIR", tempfile.gettempdir())) / f"hardening-logs-{base.name}"
        shutil.copytree(stack.logs, keep, dirs_exist_ok=True)
        shutil.rmtree(base, ignore_errors=True)


def order_body(n: int, *, prefix: str, symbol: str = "FLT") -> dict[str, Any]:
    """A small order; sides alternate so exposure stays flat however long the stream."""
    return {
        "symbol": symbol,
        "side": "BUY" if n % 2 == 0 else "SELL",
        "quantity": 1,
        "price": 10,
        "client_order_id": f"{prefix}-{n}",
    }
