"""Benchmark of order execution (a script, not a test): executed orders per second with 2 worker processes
and a venue latency of 0, and end-to-end submission -> EXECUTED time (p50/p99).

Runs against DATABASE_URL / REDIS_URL from the environment (it migrates that database, creates a user
`bench_trader`, and FLUSHES the Redis database of REDIS_URL), so point it at your own databases:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itirp_h4 REDIS_URL=redis://127.0.0.1:6379/4 \
    ITIRP_VAR_DIR=/tmp/itirp-h4 .venv/bin/python bench/bench_execution.py --orders 400 --paced 200 --rate 20

Phase 1 (throughput): 2 workers (prefork, concurrency 1 each) are started; then N orders are decided in one
transaction, whose commit publishes their messages, and the workers drain the queue; rate = orders completed
after the commit / (last completion - commit). (Filling the queue before starting the workers let the first
worker drain it while the second was still starting: a group of 16 at latency 0 takes milliseconds.)
Phase 2 (latency): with the workers running, orders are submitted at a steady rate, and each order's time
from ORDER_CREATED to EXECUTION_COMPLETED is read from the event store (same clock, microseconds).
Results are printed and written to bench/results/execution.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 30)
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import Count, Max  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from audit.models import Event, EventType  # noqa: E402
from bench.cpu_meter import CpuMeter, postgres_backends, process_groups  # noqa: E402
from bench.percentiles import percentile  # noqa: E402
from orders.breaker import breaker_reset, redis_client  # noqa: E402
from orders.models import Order, OrderStatus  # noqa: E402
from orders.submission import OrderRequest, order_submit  # noqa: E402
from tests.support.market import list_for_drills  # noqa: E402
from tests.support.worker import celery_worker  # noqa: E402

VENUE = {"VENUE_LATENCY_MS": "0", "VENUE_SUCCESS_PROBABILITY": "1", "VENUE_MAX_SLIPPAGE": "0.001"}
SYMBOLS = [f"SYM{i}" for i in range(10)]  # listed by bench_db.seed_instruments


def user() -> User:
    from accounts import services

    existing = User.objects.filter(username="bench_trader").first()
    return existing or services.user_create(
        actor=None, username="bench_trader", password="bench-pass-123", role="TRADER"
    )


def submit(trader: User, n: int, tag: str, *, resting: bool = False) -> list:
    """n orders, buys and sells alternating, all at the market's price (priced now, exactly, with no spread:
    both sides are marketable and fill at once at the simulated venue). `resting`: buys 10 % under the
    market instead, which the venue cannot fill: they rest, re-checked every VENUE_RECHECK_SECONDS."""
    import datetime as dt

    from market import prices

    now = dt.datetime.now(dt.UTC)
    prices.record(prices.Quote(symbol, Decimal(100), now, "bench") for symbol in SYMBOLS)
    ids = []
    for i in range(n):
        order, decision = order_submit(
            user=trader,
            request=OrderRequest(
                symbol=SYMBOLS[i % len(SYMBOLS)],
                side="BUY" if resting or i % 2 == 0 else "SELL",
                quantity=Decimal(1),
                price=Decimal(90) if resting else Decimal(100),
                client_order_id=f"{tag}-{i}",
            ),
        )
        if not decision.approved:
            raise SystemExit(f"order rejected by risk: {decision.message}")
        ids.append(order.pk)
    return ids


def submit_held(trader: User, n: int, tag: str) -> tuple[list, datetime]:
    """n orders decided in one transaction: their execution messages are published when it commits
    (order_submit inside a transaction queues on commit), so a worker that is already running cannot start
    on the queue before the last order is in it. Answers the ids and the time just before the commit (no
    execution can complete before it)."""
    with transaction.atomic():
        ids = submit(trader, n, tag)
        committing = timezone.now()
    return ids, committing


def vacuumed() -> None:
    """VACUUM ANALYZE where the server's autovacuum is off (as on the machine this was written on): the tables'
    statistics as autovacuum keeps them (bench/cost.py vacuumed says why)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        if cursor.fetchone()[0] != "on":
            cursor.execute("VACUUM ANALYZE")


def database() -> str:
    return str(settings.DATABASES["default"]["NAME"])


def wait_resting(ids: list, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rested = Event.objects.filter(order_id__in=ids, event_type=EventType.ORDER_RESTING).count()
        if rested == len(ids):
            return
        time.sleep(0.2)
    raise SystemExit(f"{len(ids) - rested} orders not resting after {timeout}s")


def started_count(ids: list) -> int:
    return Event.objects.filter(order_id__in=ids, event_type=EventType.EXECUTION_STARTED).count()


def wait_executed(ids: list, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_ = Order.objects.filter(pk__in=ids).exclude(status=OrderStatus.EXECUTED).count()
        if not open_:
            return
        time.sleep(0.2)
    raise SystemExit(f"{open_} orders not EXECUTED after {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400, help="orders drained in the throughput phase")
    parser.add_argument("--paced", type=int, default=200, help="orders submitted in the latency phase")
    parser.add_argument("--rate", type=float, default=20.0, help="submissions per second in the latency phase")
    parser.add_argument(
        "--resting",
        type=int,
        default=0,
        help="limit orders resting at the venue (re-checked every VENUE_RECHECK_SECONDS) throughout both phases",
    )
    parser.add_argument("--venue-latency-ms", type=int, default=0, help="the simulated venue's latency")
    parser.add_argument(
        "--quiet-seconds",
        type=float,
        default=10.0,
        help="with --resting: seconds the resting orders are left alone before the phases, the CPU of the workers "
        "and of PostgreSQL over them measured",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "execution.md"), help="the report's file")
    args = parser.parse_args()
    venue = {**VENUE, "VENUE_LATENCY_MS": str(args.venue_latency_ms)}
    if not settings.REDIS_URL:
        raise SystemExit("set REDIS_URL (and DATABASE_URL) to your own databases")

    load_before = os.getloadavg()[0]
    call_command("migrate", verbosity=0)
    redis_client().flushdb()
    breaker_reset()
    trader = user()
    # run on its own, not by run_bench.py (which seeds SYM0..SYM49): its instruments, or every order is refused
    # UNKNOWN_INSTRUMENT
    list_for_drills(SYMBOLS, "100")
    tag = datetime.now(UTC).strftime("%Y%m%d%H%M%S")

    # Phase 1: both workers are started, then the queue is committed in one transaction and drained. The rate
    # counts the orders completed after the commit, over the time from then to the last completion.
    with celery_worker(name="bench-a", **venue) as one, celery_worker(name="bench-b", **venue) as two:
        rechecks_before, quiet = 0, {}
        if args.resting:
            resting = submit(trader, args.resting, f"{tag}-r", resting=True)
            wait_resting(resting, timeout=max(120, args.resting))
            vacuumed()
            rechecks_before = started_count(resting)
            rested_at = time.monotonic()
            # what the resting orders alone cost: the workers' re-checks and the database's share of them
            meter = CpuMeter([process_groups("worker", [one.pid, two.pid]), postgres_backends(database())])
            meter.start()
            time.sleep(args.quiet_seconds)
            quiet = {name: seconds * 1000 / args.quiet_seconds for name, seconds in meter.stop().items()}
        vacuumed()
        submitting = time.monotonic()
        queued, both_ready = submit_held(trader, args.orders, f"{tag}-t")
        submit_rate = args.orders / (time.monotonic() - submitting)
        wait_executed(queued, timeout=max(120, args.orders))
        done = Event.objects.filter(
            order_id__in=queued, event_type=EventType.EXECUTION_COMPLETED, timestamp__gte=both_ready
        ).aggregate(n=Count("pk"), last=Max("timestamp"))
        seconds = (done["last"] - both_ready).total_seconds()
        drained = done["n"]
        throughput = drained / seconds

        # Phase 2: steady submissions, end-to-end latency from the events.
        paced, interval, started = [], 1.0 / args.rate, time.monotonic()
        for i in range(args.paced):
            delay = started + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            paced += submit(trader, 1, f"{tag}-p{i}")
        wait_executed(paced, timeout=120)
        if args.resting:
            rechecks = (started_count(resting) - rechecks_before) / (time.monotonic() - rested_at)
            Order.objects.filter(pk__in=resting, status=OrderStatus.APPROVED).update(
                status=OrderStatus.CANCELLED, updated_at=timezone.now()
            )  # out of later runs' way (this database is the benchmark's own)
    created = dict(
        Event.objects.filter(order_id__in=paced, event_type=EventType.ORDER_CREATED).values_list(
            "order_id", "timestamp"
        )
    )
    completed = dict(
        Event.objects.filter(order_id__in=paced, event_type=EventType.EXECUTION_COMPLETED).values_list(
            "order_id", "timestamp"
        )
    )
    latencies = [(completed[k] - created[k]).total_seconds() * 1000 for k in paced]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)

    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, cwd=ROOT, capture_output=True, text=True).stdout  # noqa: S603, S607 - for the record
    db = settings.DATABASES["default"]
    lines = [
        "# Execution benchmark",
        "",
        f"Run {datetime.now(UTC).isoformat(timespec='seconds')} at commit {commit.strip()} on {platform.node()} "
        f"({os.cpu_count()} CPUs, shared with other work), Python {platform.python_version()}, "
        f"{db['ENGINE'].rsplit('.', 1)[-1]} + Redis broker. Load average (1 min) {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after the run: the figures are lower bounds on a busy machine.",
        "",
        "Command:",
        "",
        "```",
        "DATABASE_URL=postgres://postgres@127.0.0.1:5432/itirp_h4 REDIS_URL=redis://127.0.0.1:6379/4 \\",
        f"  ITIRP_VAR_DIR=/tmp/itirp-h4 .venv/bin/python bench/bench_execution.py --orders {args.orders} "
        f"--paced {args.paced} --rate {args.rate:g}"
        + (f" --resting {args.resting}" if args.resting else "")
        + (f" --venue-latency-ms {args.venue_latency_ms}" if args.venue_latency_ms else "")
        + (f" --quiet-seconds {args.quiet_seconds:g}" if args.resting and args.quiet_seconds != 10 else "")
        + (f" --out {args.out}" if args.out != parser.get_default("out") else ""),
        "```",
        "",
        "Setup: 2 Celery worker processes (prefork, concurrency 1 each, prefetch 1, acks_late), simulated venue "
        f"with latency {args.venue_latency_ms} ms and success 100 %, worker logging at INFO (one JSON line per "
        "task start/end/execution)"
        + (
            f"; {args.resting} buy limits 10 % under the market resting at the venue throughout, re-checked every "
            f"{settings.VENUE_RECHECK_SECONDS:g} s"
            if args.resting
            else ""
        )
        + ".",
        "",
        "| measure | value |",
        "|---|---|",
        *(
            [
                f"| re-checks of the resting orders (venue calls) per second, from their rest to the end | {rechecks:.1f} |",
                f"| CPU with the {args.resting} orders resting and nothing else, over {args.quiet_seconds:g} s: "
                f"workers / PostgreSQL | {quiet.get('worker', 0):.1f} / {quiet.get('PostgreSQL', 0):.1f} ms a second |",
            ]
            if args.resting
            else []
        ),
        f"| throughput, queue of {args.orders} drained by 2 workers | **{throughput:.1f} executed orders/s** "
        f"({drained} orders in {seconds:.2f} s) |",
        f"| submissions from one process, in the one transaction (order_submit, for comparison) | "
        f"{submit_rate:.1f} orders/s |",
        f"| end-to-end submission -> EXECUTED, {args.paced} orders at {args.rate:g}/s: p50 | **{p50:.1f} ms** |",
        f"| same, p99 | **{p99:.1f} ms** |",
        f"| same, mean / max | {statistics.mean(latencies):.1f} ms / {max(latencies):.1f} ms |",
        "",
        "End-to-end time is ORDER_CREATED -> EXECUTION_COMPLETED from the event store (one database clock): "
        "commit of the submission, publish, broker delivery and the worker's execution of the order's group "
        "(orders/execution.py): the group's orders started in one statement, their venue calls made at the same "
        "time, their fills, positions and events booked in one transaction under one hold of the risk lock, the "
        "circuit breaker's permits and results one Redis update each per group. Throughput is bounded by that "
        "lock and the two shared cores, not by the venue (latency 0 here).",
        "",
    ]
    out = Path(args.out)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
