"""Pauses that hold up every request of a process at once, counted and logged where they happen.

Two things stop all of a web process's submissions together: a long hold of the risk lock (every decision, of
every process, waits for it) and a long pass of the cyclic garbage collector (every thread of the process waits
for the GIL). Either shows in the latency's tail as requests in flight that all finish at the same moment, and
neither is visible in a request's own log line. So each is measured where it happens:

- the risk lock: from the answer of the read that took it to the end of the transaction's commit (risk.store
  calls `lock_taken`; a transaction that rolls back is not timed). A hold of RISK_LOCK_WARN_SECONDS or more
  counts in itirp_risk_lock_long_holds{holder} and logs WARNING risk_lock_held_long with the holder: the
  function that took the lock (orders.submission.orders_decide, orders.execution.executions_complete, ...).
- the collector: a callback times every pass (`watch_collector`). A pass of GC_PAUSE_WARN_SECONDS or more is
  noted in the callback and reported by the next `report` (at the end of a request, or of a task): counted in
  itirp_gc_long_pauses{generation} and logged WARNING gc_pause_long. Not from the callback itself: a pass can
  start inside any allocation, such as one made while this thread holds a metric's or a stream's lock.

The cost where nothing is long: two clock reads a collector pass; for a lock hold, a clock read, a short walk up
the stack for the holder's name and a commit hook.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import deque
from functools import partial
from types import FrameType
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from core.logs import get_logger

logger = get_logger("pauses")

# Modules whose frames are skipped when naming a lock's holder: the lock's own plumbing.
_PLUMBING = ("risk.store", "core.pauses", "core.sql", "contextlib", "django.db.transaction")


def lock_taken() -> None:
    """The risk lock was just granted to this transaction: its hold is timed until the commit. Once per
    transaction, however many of its statements read the lock's row again."""
    hooks = connection.run_on_commit  # a new list for each transaction (and after a rollback)
    timed = getattr(connection, "_itirp_lock_timed", None)
    if timed is hooks:
        return
    connection._itirp_lock_timed = hooks  # type: ignore[attr-defined]
    transaction.on_commit(partial(_lock_released, _holder(), time.perf_counter()))


def _holder() -> str:
    """The function holding the lock: the first public one (a helper's name starts with _) outside the
    lock's plumbing, up the caller's stack; else the first outside the plumbing."""
    frame: FrameType | None = sys._getframe(2)
    first = None
    for _ in range(12):
        if frame is None:
            break
        module, name = frame.f_globals.get("__name__", "?"), frame.f_code.co_name
        if not module.startswith(_PLUMBING):
            first = first or f"{module}.{name}"
            if not name.startswith("_"):
                return f"{module}.{name}"
        frame = frame.f_back
    return first or "unknown"


def _lock_released(holder: str, taken: float) -> None:
    held = time.perf_counter() - taken
    if held < settings.RISK_LOCK_WARN_SECONDS:
        return
    from core.metrics import RISK_LOCK_LONG_HOLDS

    RISK_LOCK_LONG_HOLDS.labels(holder).inc()
    logger.warning("risk_lock_held_long", holder=holder, held_ms=round(held * 1000, 1))


# --- The collector --------------------------------------------------------------------------------------

_long_passes: deque[tuple[int, float, int]] = deque(maxlen=64)
_pass_started = 0.0
_threshold = float("inf")


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    # Runs inside the collector: no locks taken, nothing logged here (see the module's docstring). One pass
    # at a time in a process, so one start time is enough.
    global _pass_started  # noqa: PLW0603
    if phase == "start":
        _pass_started = time.perf_counter()
        return
    paused = time.perf_counter() - _pass_started
    if paused >= _threshold:
        _long_passes.append((int(info.get("generation", -1)), paused, int(info.get("collected", 0))))


def watch_collector() -> None:
    """Time every pass of the collector in this process (once; again after a fork is harmless)."""
    global _threshold  # noqa: PLW0603
    from core.metrics import GC_LONG_PAUSES

    _threshold = settings.GC_PAUSE_WARN_SECONDS
    for generation in range(3):  # exported at 0 from the start: no long pass is a figure, not a gap
        GC_LONG_PAUSES.labels(str(generation))
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)


def report() -> None:
    """Count and log the long passes noted since the last call; nothing to do in the usual case."""
    if not _long_passes:
        return
    from core.metrics import GC_LONG_PAUSES

    while _long_passes:
        try:
            generation, paused, collected = _long_passes.popleft()
        except IndexError:  # another thread took the last one
            return
        GC_LONG_PAUSES.labels(str(generation)).inc()
        logger.warning("gc_pause_long", generation=generation, paused_ms=round(paused * 1000, 1), collected=collected)
