"""Event appends per second with and without the audit sealer running beside them, and the sealer's and
the verifier's own throughput. A script that prints figures, not a test.

    createdb -h 127.0.0.1 -U postgres itirp_bench_h6
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itirp_bench_h6 .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itirp_bench_h6 .venv/bin/python bench/bench_audit.py

Each writer process appends in the order path's shape: one transaction, one INSERT of three events
(events_record), committed. "before": writers alone. "after": the same writers while a sealer process
runs seal_pending every --seal-every seconds (beat runs it every 10 s; tighter here on purpose).
Writes fake events that can never be deleted: it refuses a database whose name lacks "bench".
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)


def _writer(seconds: float, start: mp.Event, counts: mp.Queue) -> None:
    _django()
    from django.db import transaction

    from audit.models import EventType
    from audit.services import EventSpec, events_record

    start.wait()
    deadline, transactions = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        with transaction.atomic():
            events_record(
                specs=[
                    EventSpec(EventType.ORDER_CREATED, {"n": transactions}),
                    EventSpec(EventType.RISK_CHECK_STARTED),
                    EventSpec(EventType.RISK_CHECK_PASSED),
                ]
            )
        transactions += 1
    counts.put(transactions)


def _sealer(stop: mp.Event, every: float, sealed: mp.Queue, nice: int) -> None:
    os.nice(nice)  # --nice 19: the sealer only takes CPU the writers leave (separates CPU cost from waiting)
    _django()
    from audit import integrity

    total = runs = 0
    while not stop.is_set():
        total += sum(s.event_count for s in integrity.seal_pending(settle_seconds=0.5, gap_wait_seconds=1.0))
        runs += 1
        stop.wait(every)
    sealed.put((total, runs))


def _scenario(writers: int, seconds: float, seal_every: float | None, nice: int = 0) -> dict[str, float]:
    start, stop, counts, sealed = mp.Event(), mp.Event(), mp.Queue(), mp.Queue()
    procs = [mp.Process(target=_writer, args=(seconds, start, counts)) for _ in range(writers)]
    sealer = mp.Process(target=_sealer, args=(stop, seal_every, sealed, nice)) if seal_every else None
    for proc in procs + ([sealer] if sealer else []):
        proc.start()
    time.sleep(3)  # let every process import Django and connect before the clock starts
    began = time.monotonic()
    start.set()
    transactions = sum(counts.get(timeout=seconds + 60) for _ in procs)
    elapsed = time.monotonic() - began
    for proc in procs:
        proc.join()
    result = {"tx_per_s": transactions / elapsed, "events_per_s": 3 * transactions / elapsed}
    if sealer:
        stop.set()
        total, runs = sealed.get(timeout=120)
        sealer.join()
        result.update({"sealed_during_run": total, "sealer_runs": runs})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--seal-every", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--nice", type=int, default=0, help="niceness of the sealer process")
    args = parser.parse_args()
    _django()
    from django.conf import settings
    from django.db import connection

    name = settings.DATABASES["default"]["NAME"]
    if "bench" not in str(name):
        sys.exit(f"refusing to write fake, undeletable events into {name!r}: use a database named *bench*")
    connection.close()
    print(f"database {name}, {args.writers} writer processes x {args.seconds:.0f} s, {os.cpu_count()} CPUs")
    for round_ in range(1, args.rounds + 1):
        before = _scenario(args.writers, args.seconds, None)
        after = _scenario(args.writers, args.seconds, args.seal_every, args.nice)
        print(
            f"round {round_}: before {before['events_per_s']:.0f} events/s ({before['tx_per_s']:.0f} tx/s); "
            f"after (sealer every {args.seal_every:g} s, nice {args.nice}) {after['events_per_s']:.0f} events/s "
            f"({after['tx_per_s']:.0f} tx/s), {after['sealed_during_run']:.0f} events sealed meanwhile "
            f"in {after['sealer_runs']:.0f} runs"
        )

    _django()
    from audit import integrity
    from audit.models import Event

    began = time.monotonic()
    backlog = sum(s.event_count for s in integrity.seal_pending(settle_seconds=0, gap_wait_seconds=1.0))
    seal_s = time.monotonic() - began
    began = time.monotonic()
    report = integrity.verify()
    verify_s = time.monotonic() - began
    print(
        f"sealer catch-up: {backlog} events in {seal_s:.2f} s ({backlog / seal_s if seal_s else 0:.0f} events/s); "
        f"verify: {report.events} events in {report.seals} seals in {verify_s:.2f} s "
        f"({report.events / verify_s:.0f} events/s), ok={report.ok}; events in table {Event.objects.count()}"
    )


if __name__ == "__main__":
    main()
