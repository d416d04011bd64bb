"""`make test`: the whole suite, the fault tests in a second pytest process beside the rest.

The fault tests (tests/hardening/test_faults.py, test_broker_outage.py) run the platform on a PostgreSQL
cluster and a Redis of their own, on free ports (tests/hardening/conftest.py), and spend most of their
time waiting: for an outage's seconds, for the worker to drain, for the soak's 10 minutes at 5 orders/s.
Nothing they touch is shared with the other tests, so they run at the same time as those instead of
after them. Their pytest process gets its own test database name and Redis database for what the suite's
plumbing still touches (the autouse fixtures clear the cache), its own ITIRP_VAR_DIR, and no cache
provider (two processes would race on .pytest_cache); its output goes to a file, printed when it ends.

Usage: python tools/run_tests.py [pytest arguments]. With a path among the arguments (a file, a
directory, a node id), or TESTS_SERIAL=1, this process becomes plain pytest: what was asked for.
The exit status is the worse of the two: 0 when both passed (or one selected nothing), else non-zero.
Ctrl-C reaches both (one process group) and each tears down what it started, waited for here; SIGTERM
to this process is passed to both, and they are waited for too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
APART = ("tests/hardening/test_faults.py", "tests/hardening/test_broker_outage.py")
# The Redis database and the database name the fault tests' pytest process gets (see above).
APART_REDIS_DB = os.environ.get("TESTS_APART_REDIS_DB", "13")
NO_TESTS = 5  # pytest's exit status when nothing was selected


def _names_a_path(args: list[str]) -> bool:
    return any(not arg.startswith("-") and (ROOT / arg.split("::")[0]).exists() for arg in args)


def _with_path(url: str, path: str) -> str:
    return urlunparse(urlparse(url)._replace(path=path))


def _apart_env() -> dict[str, str]:
    env = dict(os.environ)
    database = env.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/itirp")
    if database.startswith("postgres"):
        env["DATABASE_URL"] = _with_path(database, urlparse(database).path.rstrip("/") + "_faults")
    redis = env.get("REDIS_URL", "redis://127.0.0.1:6379/1")
    if redis:
        env["REDIS_URL"] = _with_path(redis, f"/{APART_REDIS_DB}")
    env["ITIRP_VAR_DIR"] = tempfile.mkdtemp(prefix="itirp-test-faults-")
    return env


def _combined(main: int, apart: int) -> int:
    # A child ended by a signal (a negative returncode: Ctrl-C before pytest took it) as a shell says it.
    main, apart = (code if code >= 0 else 128 - code for code in (main, apart))
    codes = [code for code in (main, apart) if code != NO_TESTS]
    if not codes:
        return NO_TESTS
    return next((code for code in codes if code != 0), 0)


def main(args: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    if os.environ.get("TESTS_SERIAL") == "1" or _names_a_path(args):
        os.chdir(ROOT)
        os.execv(sys.executable, [*pytest, *args])  # noqa: S606 - pytest itself: its own signals, its own status
    log_path = Path(tempfile.gettempdir()) / f"itirp-faults-{os.getpid()}.log"
    with log_path.open("w") as log:
        apart = subprocess.Popen(  # noqa: S603 - our interpreter, the caller's arguments
            [*pytest, "-p", "no:cacheprovider", *args, *APART],
            cwd=ROOT,
            env=_apart_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ignore = [f"--ignore={path}" for path in APART]
    rest = subprocess.Popen([*pytest, *args, *ignore], cwd=ROOT)  # noqa: S603 - as above
    print(
        f"run_tests: the fault tests run beside the rest (pids: rest {rest.pid}, fault tests {apart.pid};"
        f" their output in {log_path})",
        flush=True,
    )
    children = (rest, apart)

    def terminated(signum: int, frame: Any) -> None:
        # As pytest alone would be told, each child is; the waits below go on, so nothing outlives this process
        # and the status is theirs (128 + the signal for one it ended).
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, terminated)
    try:
        rest_code = rest.wait()
        if apart.poll() is None:
            print("run_tests: waiting for the fault tests", flush=True)
        apart_code = apart.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached both pytest processes too (one process group): each ends its session and tears down
        # what it started (the fault stack's processes, stopped by PID). Wait for that; a second Ctrl-C, as
        # with pytest alone, stops waiting. The status is theirs (pytest's own for an interrupted run).
        return _combined(rest.wait(), apart.wait())
    print(f"\n===== the fault tests ({' '.join(APART)}), exit status {apart_code} =====", flush=True)
    print(log_path.read_text(), flush=True)
    log_path.unlink()
    return _combined(rest_code, apart_code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
