"""Start real Celery worker processes against the test database and the test Redis, for worker tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a worker that sees what the test sees: the test database (its real name), the
    same Redis and var folder. Extra settings (e.g. VENUE_SUCCESS_PROBABILITY) are passed as env vars."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    if db["ENGINE"].endswith("postgresql"):
        user = db.get("USER") or "postgres"
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        env["DATABASE_URL"] = (
            f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    env["PYTHONPATH"] = str(ROOT)
    env["LOG_LEVEL"] = "INFO"  # the fixture waits for the worker's "ready." line
    env.update(extra)
    return env


@contextmanager
def celery_worker(
    *, name: str = "w1", concurrency: int = 1, log_path: Path | None = None, ready_timeout: float = 30, **extra: str
) -> Iterator[subprocess.Popen]:
    """A `celery worker` process (prefork), started and ready when the block begins, stopped at its end."""
    log_path = log_path or Path(os.environ.get("ITIRP_VAR_DIR", "/tmp")) / f"worker-{name}-{os.getpid()}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in finally
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "itirp",
        "worker",
        "--loglevel",
        "INFO",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=worker_env(**extra), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{log_path.read_text()[-3000:]}")
            if " ready." in log_path.read_text():
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"worker not ready after {ready_timeout}s:\n{log_path.read_text()[-3000:]}")
        proc.log_path = log_path  # type: ignore[attr-defined]
        yield proc
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen, *, hard: bool = False, timeout: float = 15) -> None:
    """Stop the worker and its pool children (its own process group): SIGTERM, or SIGKILL with hard."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
