"""tools/run_tests.py (`make test`): the fault tests in a pytest process of their own beside the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.held_session import HELD_DIR, wait_held
from tools import run_tests

ROOT = Path(__file__).resolve().parents[2]
HELD = "tests.support.held_session"  # both pytest processes in their session when the tests signal them


def _nested_env() -> dict[str, str]:
    """The environment of a runner started by these tests: its two pytest processes get a test database name
    and Redis databases of their own, apart from this run's (and from the fault tests' process beside it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TESTS_APART_REDIS_DB": "15"}
    if env.get("DATABASE_URL", "").startswith("postgres"):
        env["DATABASE_URL"] = run_tests._with_path(env["DATABASE_URL"], "/itirp_runner")
    if env.get("REDIS_URL"):
        env["REDIS_URL"] = run_tests._with_path(env["REDIS_URL"], "/14")
    return env


@pytest.mark.parametrize(
    "args,named",
    [
        ([], False),
        (["-q", "-x"], False),
        (["-m", "not slow"], False),
        (["tests/orders"], True),
        (["-q", "tests/orders/test_api.py::test_x"], True),
    ],
)
def test_names_a_path_when_a_file_directory_or_node_id_then_plain_pytest(args: list[str], named: bool) -> None:
    assert run_tests._names_a_path(args) is named


@pytest.mark.parametrize(
    "main,apart,combined",
    [(0, 0, 0), (0, 5, 0), (5, 0, 0), (5, 5, 5), (1, 0, 1), (0, 1, 1), (5, 2, 2), (2, 1, 2), (0, -2, 130)],
)
def test_combined_exit_status_is_the_worse_and_nothing_selected_counts_only_when_both(main, apart, combined) -> None:
    assert run_tests._combined(main, apart) == combined


def test_apart_env_when_postgres_and_redis_then_own_database_name_redis_database_and_var_dir(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/itirp")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/1")
    monkeypatch.setenv("ITIRP_VAR_DIR", "/tmp/mine")
    env = run_tests._apart_env()
    assert env["DATABASE_URL"] == "postgres://postgres@127.0.0.1:5432/itirp_faults"
    assert env["REDIS_URL"] == f"redis://127.0.0.1:6379/{run_tests.APART_REDIS_DB}"
    assert env["ITIRP_VAR_DIR"] != "/tmp/mine" and Path(env["ITIRP_VAR_DIR"]).is_dir()
    monkeypatch.setenv("REDIS_URL", "")  # no Redis: left unset, as bootstrap reads it
    assert run_tests._apart_env()["REDIS_URL"] == ""


@pytest.mark.slow
def test_when_run_without_a_path_then_both_processes_run_and_the_exit_status_is_theirs() -> None:
    # One quick test selected by -k: the main process runs it, the fault tests' process selects nothing.
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "tools/run_tests.py", "-q", "-p", "no:cacheprovider", *args],
            cwd=ROOT,
            env=_nested_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )

    passed = run("-k", "test_combined_exit_status_is_the_worse and 0-0-0")
    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-3000:]
    assert "the fault tests run beside the rest" in passed.stdout and "1 passed" in passed.stdout
    assert "the fault tests (tests/hardening/test_faults.py tests/hardening/test_broker_outage.py), exit status 5" in (
        passed.stdout
    )
    refused = run("--no-such-option")  # a usage error in both: not a pass
    assert refused.returncode == pytest.ExitCode.USAGE_ERROR, refused.stdout[-3000:]


@pytest.mark.slow
def test_when_a_path_is_named_then_plain_pytest_in_this_process() -> None:
    done = subprocess.run(
        [sys.executable, "tools/run_tests.py", "-q", "-p", "no:cacheprovider"]
        + ["tests/system/test_run_tests.py", "-k", "test_combined_exit_status_is_the_worse and 0-0-0"],
        cwd=ROOT,
        env=_nested_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout and "run beside" not in done.stdout


def _held_runner(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """The runner in a session of its own, once both its pytest processes are held in their sessions."""
    runner = subprocess.Popen(
        [sys.executable, "tools/run_tests.py", "-q", "-p", "no:cacheprovider", "-p", HELD, "-k", "0-0-0"],
        cwd=ROOT,
        env={**_nested_env(), HELD_DIR: str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert runner.stdout is not None
    first = ""
    while "run beside the rest" not in first:
        first = runner.stdout.readline()
        assert first, "the runner ended without saying it runs the two"
    pids = [int(word.strip(",;")) for word in first.split() if word.strip(",;").isdigit()]
    assert len(pids) == 2, first
    wait_held(tmp_path, pids)  # both are in their session, not still starting
    return runner, pids


@pytest.mark.slow
def test_when_interrupted_then_both_pytest_processes_end_before_it_and_none_is_left(tmp_path: Path) -> None:
    # Ctrl-C at a terminal: SIGINT to the whole process group. Each pytest ends its session (tearing down what
    # it started); the runner waits for both, so nothing outlives it.
    runner, pids = _held_runner(tmp_path)
    os.killpg(runner.pid, signal.SIGINT)
    try:
        runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
    # pytest's own status for an interrupted session, or 128 + SIGINT for one the signal met before pytest ran
    assert runner.returncode in (pytest.ExitCode.INTERRUPTED, 128 + signal.SIGINT)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.slow
def test_when_terminated_then_both_pytest_processes_are_told_and_end_before_it(tmp_path: Path) -> None:
    # SIGTERM to the runner alone (a CI job's timeout, a supervisor): each pytest process is sent it, and the
    # runner ends only once both have, with a failing status (it ended by exiting at once, leaving them running).
    runner, pids = _held_runner(tmp_path)
    runner.send_signal(signal.SIGTERM)
    try:
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
    gone = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            gone.append(pid)
    if len(gone) < len(pids):
        os.killpg(runner.pid, signal.SIGKILL)
    assert gone == pids, output[-3000:]
    assert runner.returncode == 128 + signal.SIGTERM, output[-3000:]
