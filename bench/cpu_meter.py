"""CPU time of the benchmark's components over a measured window, read from /proc/<pid>/stat.

A component is a set of processes: a process group the bench started (web = the web server's main process and workers,
worker = the Celery worker and beat, a market-data feed when one runs), or processes picked by their
command line (the PostgreSQL backends of one database, the Redis server of one port). Its CPU over the
window is the growth of utime + stime of each of its processes, sampled at the start, every `interval`
seconds and at the end:
- a process born inside the window counts from zero (its start time, in ticks since boot, says so);
- for a process group, the CPU of children that exited and were reaped inside the window is in their
  parent's cutime + cstime: that growth is counted too, and a reaped member's own samples are replaced by
  it (minus what it had used before the window), so nothing is counted twice;
- a process that is not its component's child (a PostgreSQL backend, whose parent is the postmaster) and
  exits inside the window counts up to its last sample: at most `interval` seconds of its CPU are missed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    comm: str
    ppid: int
    pgrp: int
    utime: int
    stime: int
    cutime: int
    cstime: int
    starttime: int  # clock ticks after boot

    @property
    def own(self) -> int:
        return self.utime + self.stime

    @property
    def reaped(self) -> int:
        return self.cutime + self.cstime


def parse_stat(text: str) -> ProcStat:
    """One /proc/<pid>/stat line (proc(5)); the command name may hold spaces and parentheses."""
    head, _, rest = text.rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = rest.split()  # fields[0] is field 3 (state)
    return ProcStat(
        pid=int(pid),
        comm=comm,
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        cutime=int(fields[13]),
        cstime=int(fields[14]),
        starttime=int(fields[19]),
    )


@dataclass(frozen=True)
class Component:
    name: str
    match: Callable[[ProcStat, Callable[[], str]], bool]  # (stat, its command line on demand) -> member?
    group: bool  # a process group: its reaped children's CPU belongs to it


def process_groups(name: str, pgids: Iterable[int]) -> Component:
    wanted = frozenset(pgids)
    return Component(name, lambda stat, _cmd: stat.pgrp in wanted, group=True)


def postgres_backends(database: str) -> Component:
    """The backends (and autovacuum workers) of one database: their title names it ("postgres: ... db ...")."""
    return Component("PostgreSQL", lambda stat, cmd: stat.comm == "postgres" and database in cmd().split(), group=False)


def redis_server(port: int) -> Component:
    return Component(
        "Redis",
        lambda stat, cmd: stat.comm == "redis-server" and any(t.endswith(f":{port}") for t in cmd().split()),
        group=False,
    )


@dataclass
class _Seen:
    component: str
    ppid: int
    own_first: int
    reaped_first: int
    own_last: int
    reaped_last: int


class CpuMeter:
    """start() ... stop() -> CPU seconds per component over the window (poll=False: no sampling thread)."""

    def __init__(self, components: list[Component], *, interval: float = 0.5, proc: Path = Path("/proc")) -> None:
        self.components = components
        self.interval = interval
        self.proc = proc
        self._seen: dict[tuple[int, int], _Seen] = {}
        self._start_ticks = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _uptime_ticks(self) -> float:
        return float((self.proc / "uptime").read_text().split()[0]) * CLK_TCK

    def _scan(self) -> dict[tuple[int, int], tuple[str, ProcStat]]:
        found: dict[tuple[int, int], tuple[str, ProcStat]] = {}
        for entry in self.proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = parse_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue  # exited while being read

            def cmdline(entry: Path = entry) -> str:
                try:
                    return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    return ""

            for component in self.components:
                if component.match(stat, cmdline):
                    found[(stat.pid, stat.starttime)] = (component.name, stat)
                    break
        return found

    def sample(self, *, first: bool = False) -> set[tuple[int, int]]:
        """Read every member now; returns the keys (pid, start time) seen."""
        found = self._scan()
        with self._lock:
            for key, (name, stat) in found.items():
                seen = self._seen.get(key)
                if seen is None:
                    born_inside = not first and stat.starttime >= self._start_ticks
                    base_own, base_reaped = (0, 0) if born_inside else (stat.own, stat.reaped)
                    seen = _Seen(name, stat.ppid, base_own, base_reaped, stat.own, stat.reaped)
                    self._seen[key] = seen
                seen.own_last, seen.reaped_last = stat.own, stat.reaped
        return set(found)

    def start(self, *, poll: bool = True) -> None:
        self._seen.clear()
        self._start_ticks = self._uptime_ticks()
        self.sample(first=True)
        if poll:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> dict[str, float]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        alive = self.sample()
        groups = {c.name for c in self.components if c.group}
        members = {(key[0], seen.component) for key, seen in self._seen.items()}
        ticks = {c.name: 0 for c in self.components}
        for key, seen in self._seen.items():
            delta = seen.own_last - seen.own_first
            if seen.component in groups:
                delta += seen.reaped_last - seen.reaped_first
                if key not in alive and (seen.ppid, seen.component) in members:
                    # reaped by a member: its whole life is in the parent's cutime growth; take out the
                    # part it had used before the window instead of its own samples
                    delta = -(seen.own_first + seen.reaped_first)
            ticks[seen.component] += delta
        return {name: value / CLK_TCK for name, value in ticks.items()}
