"""Risk decisions under real concurrency on PostgreSQL: threads and processes race against a tight limit.

The daily volume limit fits exactly N orders. Whatever the interleaving, exactly N are approved (none
over the limit, none that fits refused), and the reservations add up to the limit to the cent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, models

from audit.models import Event
from orders import services as order_services
from orders.models import Order, OrderStatus
from orders.submission import OrderRequest, order_submit
from risk import services as risk_services
from risk.models import Position, RiskState
from tests.support.worker import ROOT, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FITS = 12  # orders of 10 @ 100 = 1,000 each that fit in the day's volume
THREADS, PER_THREAD = 4, 5
PROCESSES, PER_PROCESS = 3, 5
TOTAL = THREADS * PER_THREAD + PROCESSES * PER_PROCESS


def test_submissions_when_threads_and_processes_race_a_tight_limit_then_exactly_the_orders_that_fit_pass(
    make_user, risk_manager, _purge_queue
) -> None:
    traders = [make_user("racer-a"), make_user("racer-b")]
    risk_services.risk_limits_update(
        actor=risk_manager,
        max_daily_volume=Decimal(FITS * 1000),
        max_position_size=Decimal("1e12"),
        max_net_exposure=Decimal("1e12"),
        max_gross_exposure=Decimal("1e12"),
    )
    Position.objects.create(symbol="CONC")  # a symbol traded before: the race is on the risk lock alone
    go = Path(tempfile.mkdtemp(prefix="itirp-race-")) / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.risk.submitter", traders[i % 2].username, str(PER_PROCESS), f"p{i}", str(go)],
            cwd=ROOT,
            env=worker_env(LOG_LEVEL="WARNING"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""

        barrier = threading.Barrier(THREADS + 1)
        results: list[str] = []
        errors: list[BaseException] = []

        def race(index: int) -> None:
            try:
                barrier.wait()
                for i in range(PER_THREAD):
                    request = OrderRequest(
                        symbol="CONC",
                        side="BUY",
                        quantity=Decimal(10),
                        price=Decimal(100),
                        client_order_id=f"t{index}-{i}",
                    )
                    order, _ = order_submit(user=traders[index % 2], request=request)
                    results.append(order.status)
            except BaseException as exc:  # the assertion below reports it
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=race, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        go.touch()
        barrier.wait()
        for thread in threads:
            thread.join(timeout=120)
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert not errors, errors
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        results.extend(json.loads(line)["status"] for line in out.splitlines() if line.startswith("{"))

    assert len(results) == TOTAL
    assert results.count(OrderStatus.APPROVED) == FITS, "over the limit, or an order that fit was refused"
    assert Order.objects.filter(status=OrderStatus.APPROVED).count() == FITS
    rejected = Order.objects.filter(status=OrderStatus.REJECTED)
    assert rejected.count() == TOTAL - FITS
    assert set(rejected.values_list("rejection_reason", flat=True)) == {"Risk violations: DAILY_VOLUME_LIMIT"}
    # the reservations add up to the limit exactly, and every decision has its three events
    assert RiskState.objects.get().open_volume == Decimal(FITS * 1000)
    position = Position.objects.get(scope="firm", symbol="CONC")
    assert (position.open_buy_quantity, position.open_buy_notional) == (FITS * 10, FITS * 1000)
    assert Event.objects.filter(order_id__isnull=False).count() == 3 * TOTAL
    # both kinds of racer got through: the lock serialised threads and processes alike
    approved_keys = Order.objects.filter(status=OrderStatus.APPROVED).values_list("client_order_id", flat=True)
    assert Order.objects.filter(client_order_id__startswith="p").count() == PROCESSES * PER_PROCESS
    assert len(set(approved_keys)) == FITS


def test_kill_switch_when_flipped_during_a_burst_then_no_order_is_left_approved(
    make_user, risk_manager, _purge_queue
) -> None:
    """Every order decided before the switch is cancelled by it; every order after it is rejected by it.
    An order approved after the switch committed (a stale read of the switch) would stay APPROVED."""
    traders = [make_user(f"burst-{i}") for i in range(3)]
    started = threading.Event()
    errors: list[BaseException] = []
    decided: list[str] = []

    def burst(index: int) -> None:
        try:
            for i in range(15):
                request = OrderRequest(
                    symbol=f"K{i % 4}",
                    side="BUY",
                    quantity=Decimal(1),
                    price=Decimal(10),
                    client_order_id=f"{index}-{i}",
                )
                order, _ = order_submit(user=traders[index], request=request)
                decided.append(order.status)
                if len(decided) >= 6:
                    started.set()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=burst, args=(i,)) for i in range(len(traders))]
    for thread in threads:
        thread.start()
    assert started.wait(timeout=60)
    _, cancelled = order_services.kill_switch_set(actor=risk_manager, enabled=True, reason="burst")
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    statuses = dict(Order.objects.values_list("status").annotate(n=models.Count("pk")).order_by())
    assert statuses.get(OrderStatus.APPROVED, 0) == 0, statuses
    assert statuses[OrderStatus.CANCELLED] == len(cancelled) >= 6
    assert sum(statuses.values()) == 45
    assert set(Order.objects.filter(status=OrderStatus.REJECTED).values_list("rejection_reason", flat=True)) <= {
        "Kill switch is active - all trading halted"
    }
    assert RiskState.objects.get().open_volume == 0
    switch = Event.objects.get(event_type="KILL_SWITCH_ACTIVATED")
    # every order approved before the switch was decided before it in the log, and is cancelled by it
    assert Event.objects.filter(event_type="RISK_CHECK_PASSED", sequence__gt=switch.sequence).count() == 0
    assert Event.objects.filter(event_type="ORDER_CANCELLED", causation_id=switch.event_id).count() == len(cancelled)
