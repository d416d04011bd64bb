"""A real Celery worker whose Redis broker is SIGKILLed while it holds unacked messages (issue 20, item 2).

Each round: a fresh worker (prefork -c 2, control channel and heartbeat on, as compose runs it) on a
throw-away redis-server; orders submitted at ~20/s and published to that broker; Redis killed with tasks in
flight, started again 3 s later. The worker must still be the same process and execute an order submitted
after the return. On the old code (itirp.celery's guard disabled) the worker exited with "Unrecoverable
error: AttributeError('NoneType' object has no attribute 'hostname')": in round 6 of this test's first run
(7 rounds), and in rounds 1 and 7 of the reproduction script it grew from (10 rounds, 10 s outages).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from orders.models import Order, OrderStatus
from orders.publish import Message, Publisher
from tests.execution.conftest import wait_for
from tests.support.market import price
from tests.support.ports import port_from_env
from tests.support.worker import ROOT, stop, worker_env

PORT = port_from_env("BROKER_LOSS_REDIS_PORT")
URL = f"redis://127.0.0.1:{PORT}/0"
ROUNDS = int(os.environ.get("BROKER_LOSS_ROUNDS", "7"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]


def _redis() -> subprocess.Popen:
    import redis

    proc = subprocess.Popen(
        ["redis-server", "--port", str(PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(lambda: _ping(redis), timeout=10, interval=0.05, what="redis-server up")
    return proc


def _ping(redis: object) -> bool:
    try:
        return bool(redis.Redis(port=PORT, socket_timeout=0.5).ping())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _worker(log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 - the process keeps it
    env = worker_env(
        REDIS_URL=URL,
        ITIRP_PROCESS="worker",
        VENUE_LATENCY_MS="40",
        VENUE_SUCCESS_PROBABILITY="1",
        VENUE_MAX_SLIPPAGE="0",
        ORDER_STUCK_AFTER_SECONDS="600",  # the sweeper out of the way: survival is what is tested
    )
    cmd = [sys.executable, "-m", "celery", "-A", "itirp", "worker", "--loglevel", "INFO", "--pool", "prefork"]
    cmd += ["--concurrency", "2", "--hostname", f"loss{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: " ready." in log_path.read_text() or proc.poll() is not None, timeout=60, what="worker ready")
    assert proc.poll() is None, log_path.read_text()[-3000:]
    return proc


def test_broker_killed_with_unacked_messages_same_worker_process_executes_again(trader):
    from orders.submission import OrderRequest, order_submit

    publisher = Publisher(url=URL)
    log_dir = Path(os.environ.get("ITIRP_VAR_DIR", "/tmp"))
    counter = iter(range(1_000_000))

    price("LOSS", "10")  # the market at the orders' price: buys and sells at 10 both fill

    def submit() -> Order:
        n = next(counter)
        order, decision = order_submit(
            user=trader,
            request=OrderRequest(
                symbol="LOSS",
                side="BUY" if n % 2 else "SELL",
                quantity=Decimal(1),
                price=Decimal(10),
                client_order_id=f"loss-{n}",  # identical key-less orders inside the window would be duplicates
            ),
        )
        assert decision.approved, decision.message
        publisher.publish(Message(key=str(order.pk), args=[str(order.pk)], kwargs={"correlation_id": None}))
        return order

    exits = []
    for round_no in range(ROUNDS):
        broker = _redis()
        log_path = log_dir / f"worker-loss-{os.getpid()}-{round_no}.log"
        worker = _worker(log_path)
        stop_feed = threading.Event()

        def feed(stop_feed: threading.Event = stop_feed) -> None:
            from django.db import connection

            try:
                while not stop_feed.is_set():
                    submit()
                    time.sleep(0.05)
            finally:
                connection.close()

        feeder = threading.Thread(target=feed, daemon=True)
        try:
            feeder.start()
            time.sleep(2)  # deliveries in flight, unacked (acks_late)
            _kill(broker)
            time.sleep(3)
            broker = _redis()
            time.sleep(3)
            stop_feed.set()
            feeder.join(timeout=30)
            if worker.poll() is not None:
                exits.append((round_no, worker.returncode, "Unrecoverable error" in log_path.read_text()))
                continue
            after = submit()
            wait_for(
                lambda o=after: Order.objects.filter(pk=o.pk, status=OrderStatus.EXECUTED).exists(),
                timeout=30,
                what="an order submitted after the return executed",
            )
            assert worker.poll() is None  # the same process: never restarted
            assert "Unrecoverable error" not in log_path.read_text()
        finally:
            stop_feed.set()
            stop(worker)
            _kill(broker)
    assert not exits, f"worker exited in rounds (round, code, unrecoverable): {exits}"
