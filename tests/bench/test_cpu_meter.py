"""The /proc CPU reader of `make bench` (bench/cpu_meter.py): parsing, membership, and accounting over a
window, on a fake /proc and on real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.cpu_meter import CLK_TCK, CpuMeter, parse_stat, postgres_backends, process_groups, redis_server


def stat_line(pid: int, comm: str, *, ppid: int, pgrp: int, own: int, reaped: int = 0, start: int = 100) -> str:
    # fields 3.. of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    # cutime cstime priority nice threads itrealvalue starttime ...
    fields = ["S", ppid, pgrp, pgrp, 0, -1, 0, 0, 0, 0, 0, own, 0, reaped, 0, 20, 0, 1, 0, start, 0, 0]
    return f"{pid} ({comm}) " + " ".join(str(f) for f in fields) + "\n"


class FakeProc:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uptime(10.0)

    def uptime(self, seconds: float) -> None:
        (self.root / "uptime").write_text(f"{seconds} 1.0\n")

    def put(self, pid: int, comm: str, cmdline: str, **stat: int) -> None:
        folder = self.root / str(pid)
        folder.mkdir(exist_ok=True)
        (folder / "stat").write_text(stat_line(pid, comm, **stat))
        (folder / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")

    def gone(self, pid: int) -> None:
        for entry in (self.root / str(pid)).iterdir():
            entry.unlink()
        (self.root / str(pid)).rmdir()


def test_parse_stat_when_command_name_has_spaces_and_parentheses_then_fields_right() -> None:
    stat = parse_stat(stat_line(42, "gunicorn: (worker) x", ppid=7, pgrp=9, own=123, reaped=45, start=777))
    assert (stat.pid, stat.comm, stat.ppid, stat.pgrp) == (42, "gunicorn: (worker) x", 7, 9)
    assert (stat.own, stat.reaped, stat.starttime) == (123, 45, 777)


def test_meter_when_members_work_exit_and_start_then_each_tick_counted_once(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path)
    start_ticks = int(10.0 * CLK_TCK)
    proc.put(10, "gunicorn", "gunicorn master", ppid=1, pgrp=10, own=100)
    proc.put(11, "gunicorn", "gunicorn worker", ppid=10, pgrp=10, own=50)
    proc.put(20, "postgres", "postgres: 15/main: postgres itirp_bench 127.0.0.1(5) idle", ppid=2, pgrp=2, own=30)
    proc.put(21, "postgres", "postgres: 15/main: postgres itirp_bench_h3 127.0.0.1(6) idle", ppid=2, pgrp=2, own=9)
    proc.put(30, "redis-server", "redis-server 127.0.0.1:6379", ppid=1, pgrp=30, own=200)
    proc.put(31, "redis-server", "redis-server 127.0.0.1:6412", ppid=1, pgrp=31, own=500)
    proc.put(40, "python", "python other", ppid=1, pgrp=40, own=1000)
    meter = CpuMeter([process_groups("web", [10]), postgres_backends("itirp_bench"), redis_server(6379)], proc=tmp_path)
    meter.start(poll=False)

    # in the window: the worker uses 30 more ticks, exits and is reaped by the master (its lifetime, 80,
    # moves into the master's cutime); a new worker starts and uses 5; the master itself uses 10
    proc.gone(11)
    proc.put(10, "gunicorn", "gunicorn master", ppid=1, pgrp=10, own=110, reaped=80)
    proc.put(12, "gunicorn", "gunicorn worker", ppid=10, pgrp=10, own=5, start=start_ticks + 50)
    proc.put(20, "postgres", "postgres: 15/main: postgres itirp_bench 127.0.0.1(5) active", ppid=2, pgrp=2, own=45)
    proc.put(21, "postgres", "postgres: 15/main: postgres itirp_bench_h3 127.0.0.1(6) idle", ppid=2, pgrp=2, own=99)
    proc.put(30, "redis-server", "redis-server 127.0.0.1:6379", ppid=1, pgrp=30, own=260)
    proc.put(31, "redis-server", "redis-server 127.0.0.1:6412", ppid=1, pgrp=31, own=900)
    proc.put(40, "python", "python other", ppid=1, pgrp=40, own=5000)

    assert meter.stop() == {"web": 45 / CLK_TCK, "PostgreSQL": 15 / CLK_TCK, "Redis": 60 / CLK_TCK}


CHILD = """
import os, sys, time

def burn(seconds):
    began = sum(os.times()[:2])
    while sum(os.times()[:2]) - began < seconds:
        pass

pid = os.fork()
if pid == 0:
    burn(0.2)  # before the window
    print("ready", sum(os.times()[:2]), flush=True)
    sys.stdin.readline()
    burn(0.3)  # inside it
    print("child", sum(os.times()[:2]), flush=True)
    os._exit(0)
os.waitpid(pid, 0)  # reaped: its CPU moves into this process's cutime
print("reaped", flush=True)
sys.stdin.readline()
"""


def test_meter_when_real_child_exits_inside_window_then_only_its_window_cpu_counted() -> None:
    leader = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert leader.stdout is not None and leader.stdin is not None
        ready = float(leader.stdout.readline().split()[1])
        meter = CpuMeter([process_groups("group", [leader.pid])])
        meter.start(poll=False)
        leader.stdin.write("go\n")
        leader.stdin.flush()
        child_total = float(leader.stdout.readline().split()[1])
        assert leader.stdout.readline().strip() == "reaped"
        measured = meter.stop()["group"]
    finally:
        leader.kill()
        leader.wait()
    in_window = child_total - ready
    # the child's CPU before the window is not counted, its CPU inside it is, once (the leader only waits)
    assert in_window - 0.03 <= measured <= in_window + 0.05
