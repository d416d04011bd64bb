"""Group commit records each batch's size and wall time (itirp_order_batch_size / _seconds), which
`make bench` reads from /metrics; bench/cost.py turns two scrapes into the batches between them."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.metrics import exposition
from orders.batching import GroupCommit
from orders.submission import orders_decide

WAIT = 10


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition().decode())
        for s in family.samples
    }


def test_group_commit_when_batches_run_then_sizes_and_times_recorded(cost: Any) -> None:
    entered, release = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def run_batch(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 2:  # the first batch of the race holds the leader while three more queue up
            entered.set()
            assert release.wait(WAIT)
        return [item * 2 for item in items]

    group: GroupCommit[int, int] = GroupCommit(run_batch, max_batch=64)
    before = scrape()
    assert group.submit(1) == 2  # a batch of one
    threads = [threading.Thread(target=group.submit, args=(10,))]
    threads[0].start()
    assert entered.wait(WAIT)
    threads += [threading.Thread(target=group.submit, args=(n,)) for n in (11, 12, 13)]
    for thread in threads[1:]:
        thread.start()
    while len(group._queue) < 3:
        threading.Event().wait(0.005)
    release.set()
    for thread in threads:
        thread.join(WAIT)
    after = scrape()

    assert [len(b) for b in batches] == [1, 1, 3]
    size = cost.histogram_delta(before, after, "itirp_order_batch_size")
    assert (size["count"], size["sum"]) == (3, 5)
    assert (size["buckets"][1.0], size["buckets"][2.0], size["buckets"][3.0]) == (2, 0, 1)
    assert cost.histogram_percentile(size, 50) == 1.0 and cost.histogram_percentile(size, 99) == 3.0
    seconds = cost.histogram_delta(before, after, "itirp_order_batch_seconds")
    assert seconds["count"] == 3 and seconds["sum"] > 0
    assert cost.histogram_delta(before, after, "itirp_not_recorded_here") is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_risk_lock_hold_when_a_batch_commits_its_own_transaction_then_one_hold_recorded_and_none_inside_a_caller(
    cost: Any, trader: Any
) -> None:
    from django.db import transaction

    from tests.orders.test_group_commit import set_limits, submission

    set_limits()
    before = scrape()
    outcomes = orders_decide([submission(trader, client_order_id="hold-1"), submission(trader, client_order_id="h2")])
    assert all(not isinstance(o, Exception) and o[1].approved for o in outcomes)
    middle = scrape()
    with transaction.atomic():  # the caller's transaction: the lock is held until it commits, not measured here
        orders_decide([submission(trader, client_order_id="hold-3")])
    after = scrape()

    hold = cost.histogram_delta(before, middle, "itirp_risk_lock_hold_seconds")
    batch = cost.histogram_delta(before, middle, "itirp_order_batch_seconds")
    assert hold["count"] == 1 and hold["sum"] > 0
    assert batch is None or batch["count"] == 0  # orders_decide alone: no group-commit wrapper around it
    assert cost.histogram_delta(middle, after, "itirp_risk_lock_hold_seconds")["count"] == 0
