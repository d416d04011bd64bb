"""The processes `make bench` starts: spawned in their own session, stopped by process group, always."""

# ruff: noqa: S603, S310, T201 - a local script: our own commands, our own 127.0.0.1 servers

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"

STARTED: list[subprocess.Popen] = []


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def settings_env(tree: Path) -> dict[str, str]:
    """The settings a tree's servers run with: bench.settings (the project's, plus the baseline routes) where
    the tree has it; an older tree (`--before`) has no bench/settings.py and routes the baselines itself when
    ITIRP_BENCH_BASELINE=1."""
    if (tree / "bench" / "settings.py").exists():
        return {"DJANGO_SETTINGS_MODULE": "bench.settings"}
    return {"DJANGO_SETTINGS_MODULE": "itirp.settings", "ITIRP_BENCH_BASELINE": "1"}


def spawn(cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """Start a process in its own session (so its children can be stopped with it) and remember its PID."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    STARTED.append(proc)
    log(f"started pid {proc.pid}: {shlex.join(cmd)} (log {log_path})")
    return proc


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group led by this PID, SIGKILL it after 20 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
    # children left behind by a leader that already exited: the group is still addressable by its id
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc in STARTED:
        STARTED.remove(proc)


def stop_all() -> None:
    for proc in list(reversed(STARTED)):
        stop(proc)


def on_signal(signum: int, _frame: Any) -> None:
    stop_all()
    raise SystemExit(128 + signum)


def assert_port_free(port: int) -> None:
    """Stop the run if another process listens on the port a server is about to take: gunicorn retries its bind
    for a few seconds, while wait_http below already gets its answer from the other server, and the run would
    measure that server instead (seen: a bench started while another still held the port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SystemExit(
                f"port {port} is in use by another process ({exc}): stop it, or choose another port"
            ) from exc


def wait_http(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} not answering:\n{log_path.read_text()[-3000:]}")


def wait_log(text: str, proc: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process exited:\n{log_path.read_text()[-3000:]}")
        if text in log_path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise SystemExit(f"no {text!r} in {log_path}:\n{log_path.read_text()[-3000:]}")


def web_command(server: str, port: int, tree: Path = ROOT) -> tuple[list[str], str]:
    """The web server command for --web KIND:WORKERS[xTHREADS]: serve:NxT, production's (`python -m
    itirp.serve`: granian, N processes of T threads), or for a tree from before it, that tree's production
    server of the same shape (gunicorn gthread); gunicorn sync or gthread workers (gunicorn.conf.py);
    granian:NxT, granian's own command line (the WSGI application, N processes of T blocking threads each);
    uvicorn:N, the ASGI application (Django's async handler, uvloop, httptools)."""
    kind, _, size = server.partition(":")
    workers, _, threads = (size or "2").partition("x")
    bind = f"127.0.0.1:{port}"
    if kind == "serve":
        if (tree / "itirp" / "serve.py").exists():
            cmd = [str(BIN / "python"), "-m", "itirp.serve", "--bind", bind, "--workers", workers]
            return cmd + ["--threads", threads or "8"], f"itirp.serve (granian WSGI), {workers} x {threads or 8}"
        kind = "gthread"  # before itirp.serve, production ran gunicorn gthread (one process of 8 since session 9)
        threads = threads or "8"
    if kind == "granian":
        cmd = [str(BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--workers", workers, "--blocking-threads", threads or "4", "--no-ws", "itirp.wsgi:application"]
        return cmd, f"granian WSGI, {workers} workers x {threads or 4} blocking threads"
    if kind == "uvicorn":
        cmd = [str(BIN / "uvicorn"), "itirp.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--workers", workers, "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        return cmd, f"uvicorn ASGI (Django's async handler, sync views in its thread), {workers} workers"
    if kind in ("sync", "gthread"):
        cmd = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "itirp.wsgi:application", "--bind", bind]
        cmd += ["--workers", workers, "--worker-class", kind, "--no-control-socket"]
        if kind == "gthread":
            cmd += ["--threads", threads or "4"]
        return cmd, f"gunicorn {kind}, {workers} workers" + (f" x {threads or 4} threads" if kind == "gthread" else "")
    raise SystemExit(f"unknown --web {server!r}")
