"""Run a command and start it again whenever it exits on its own: `make run`'s supervision (Procfile.dev).

honcho starts processes but never restarts one: a Celery worker that exits (issue 20: kombu's broker-loss
crash) would leave `make run` without execution. Usage: python tools/supervise.py [--delay S] -- CMD ARGS...
SIGTERM / SIGINT / SIGHUP are passed to the command and end the supervision (Ctrl-C, honcho stopping).
The delay doubles while the command keeps dying within 10 s of its start (at most 30 s), so a command that
cannot start does not spin.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

STABLE_AFTER_SECONDS = 10.0
MAX_DELAY_SECONDS = 30.0


def _log(event: str, **fields: object) -> None:
    line = {"timestamp": datetime.now(UTC).isoformat(), "level": "WARNING", "component": "supervise", "event": event}
    print(json.dumps({**line, **fields}), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=1.0, help="seconds before a restart (doubled while failing)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is required after --")
    stopping = False
    child: subprocess.Popen | None = None

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    delay = args.delay
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)  # noqa: S603 - the operator's own command line (Procfile.dev)
        code = child.wait()
        if stopping:
            return code
        ran = time.monotonic() - started
        delay = args.delay if ran >= STABLE_AFTER_SECONDS else min(delay * 2, MAX_DELAY_SECONDS)
        _log("process_exited_restarting", command=command[0], pid=child.pid, returncode=code, ran_seconds=round(ran, 1))
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
        if stopping:
            return code


if __name__ == "__main__":
    sys.exit(main())
