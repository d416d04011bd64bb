"""A pytest plugin (`-p tests.support.held_session`) whose session waits before it collects, having said so:
the runner tests (tests/system/test_run_tests.py) signal pytest processes that must be in their session when
the signal comes. A fixed pause did not promise it on a fast machine: a session with nothing to run could end
within it, and a signal that met pytest still importing Django ended it with an error instead."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

HOLD_SECONDS = 60
HELD_DIR = "ITIRP_TEST_HELD_DIR"  # where each held session leaves a file named by its pid


def pytest_sessionstart(session: Any) -> None:
    folder = os.environ.get(HELD_DIR)
    if folder:
        (Path(folder) / str(os.getpid())).touch()
    time.sleep(HOLD_SECONDS)  # a signal ends it: SIGINT as an interrupted session, SIGTERM as the process


def wait_held(folder: Path, pids: list[int], *, timeout: float = 60) -> None:
    """Until every one of `pids` is held in its session (its file in `folder`)."""
    deadline = time.monotonic() + timeout
    while not all((folder / str(pid)).exists() for pid in pids):
        if time.monotonic() > deadline:
            raise AssertionError(f"not all of {pids} reached their session within {timeout} s")
        time.sleep(0.1)
