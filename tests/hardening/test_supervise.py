"""tools/supervise.py (Procfile.dev's worker and beat): a command that dies is started again; a stop signal
ends the command and the supervision together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.hardening.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_supervise_when_command_killed_then_restarted_and_when_stopped_then_both_end(tmp_path):
    pids = tmp_path / "pids"
    child = f"import os, time; open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n'); time.sleep(600)"
    supervisor = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "supervise.py"), "--delay", "0.2", "--", sys.executable, "-c", child],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        first = wait_for(lambda: _pids(pids)[:1], timeout=20, what="command started")[0]
        os.kill(first, signal.SIGKILL)  # a crash, as the worker's exit on broker loss was
        second = wait_for(lambda: _pids(pids)[1:2], timeout=20, what="command restarted")[0]
        assert second != first and _alive(second)
        assert supervisor.poll() is None
        supervisor.send_signal(signal.SIGTERM)  # Ctrl-C / honcho stopping
        assert supervisor.wait(timeout=20) is not None
        wait_for(lambda: not _alive(second), timeout=10, what="command stopped with its supervisor")
        time.sleep(0.5)
        assert len(_pids(pids)) == 2, "started again after the stop"
        assert "process_exited_restarting" in supervisor.stderr.read()
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait(timeout=5)
