"""Group commit: the submissions that arrive in one process while a decision is being committed are decided
and committed together, in one transaction under one hold of the risk lock.

Leader and followers, no thread of our own: every submitting thread queues its item and takes the leader
lock; whoever holds it runs everything queued (its own item included) through the batch function, hands each
waiting thread its own result or error, and lets go. A thread that finds its item already answered returns
at once. One batch at a time per process; batches of different processes (and machines) are serialised by
the risk lock in PostgreSQL, so what a batch decides is exactly what deciding its items one by one, in queue
order, would have decided.

Each batch's size and wall time are recorded (core.metrics: itirp_order_batch_size, itirp_order_batch_seconds)
for `make bench`: two observations per batch, not per order.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from core.metrics import ORDER_BATCH_SECONDS, ORDER_BATCH_SIZE

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Slot(Generic[Item]):
    __slots__ = ("item", "result", "error", "done")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit(Generic[Item, Result]):
    """Runs `run_batch(items) -> results` (one result or exception per item, in order) for queued items."""

    def __init__(self, run_batch: Callable[[Sequence[Item]], Sequence[Result | BaseException]], max_batch: int) -> None:
        self._run_batch = run_batch
        self._max_batch = max(1, max_batch)
        self._queue: deque[_Slot[Item]] = deque()
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()

    def submit(self, item: Item) -> Result:
        slot = _Slot(item)
        with self._queue_lock:
            self._queue.append(slot)
        while not slot.done:
            with self._leader:
                if not slot.done:
                    self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _lead(self) -> None:
        with self._queue_lock:
            batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
        if not batch:
            return
        started = time.perf_counter()
        try:
            outcomes: Sequence[Any] = self._run_batch([slot.item for slot in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} answered {len(outcomes)} results")
        except BaseException as exc:  # noqa: BLE001 - every waiting caller gets the batch's error, re-raised
            outcomes = [exc] * len(batch)
        # the whole of run_batch: its transaction's wait for the risk lock, its hold and the commit, then the
        # execution message the submissions' batch publishes (orders.submission._enqueue_batch)
        ORDER_BATCH_SECONDS.observe(time.perf_counter() - started)
        ORDER_BATCH_SIZE.observe(len(batch))
        for slot, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.result = outcome
            slot.done = True
