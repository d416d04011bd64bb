"""The internal venue's match under the risk lock, measured: how long one order's match transaction takes
(book rebuilt from its rows, matched, fills of both sides booked) with B orders resting in the book.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itirp_internal_bench python bench/bench_internal.py [--resting 0 100 1000]

Creates and migrates the database named by DATABASE_URL (default: that one), lists AAPL, makes two traders in
two books, then for each book size: rests B sell orders far from the market, and times N crossing pairs
(a resting sell, then a buy that trades with it) through orders.execution.order_execute, the execution task's
work. Prints the median and 95th percentile of the wall time per match and the median CPU time this process spent
(the database's own CPU is not in it). On a loaded machine read the CPU figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resting", type=int, nargs="+", default=[0, 100, 1000])
    parser.add_argument("--pairs", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/itirp_internal_bench")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("REDIS_URL", "")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        import psycopg

        url = os.environ["DATABASE_URL"]
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)
    from unittest import mock

    from accounts import services as accounts
    from books.services import book_create, grant_add
    from market.services import instruments_load
    from orders import execution
    from orders.submission import OrderRequest, order_submit
    from risk import services as risk_services
    from tests.support.market import price

    instruments_load(
        actor=None,
        rows=[
            {
                "symbol": "AAPL",
                "name": "Apple",
                "asset_class": "EQUITY",
                "currency": "USD",
                "tick_size": "0.01",
                "lot_size": "1",
                "multiplier": "1",
                "staleness_seconds": 86400,
            }
        ],
    )
    price("AAPL", "100")
    big = Decimal("1e15")
    risk_services.risk_limits_update(
        actor=None,
        reason="bench",
        max_position_size=big,
        max_daily_volume=big,
        max_net_exposure=big,
        max_gross_exposure=big,
    )
    buyer = accounts.user_create(actor=None, username="b1", password="bench-pass-1", role="TRADER")
    seller = accounts.user_create(actor=None, username="s1", password="bench-pass-1", role="TRADER")
    book = book_create(actor=None, code="SELL", name="Sellers", desk_code="EQ")
    grant_add(actor=None, obj=book, user=seller, permission="trade")
    ids = iter(range(10**9))

    def send(user, side: str, px: str, book_code: str | None = None) -> object:  # noqa: ANN001
        order, decision = order_submit(
            user=user,
            request=OrderRequest(
                symbol="AAPL",
                side=side,
                quantity=Decimal(1),
                price=Decimal(px),
                venue="INTERNAL",
                time_in_force="GTC",
                client_order_id=f"x{next(ids)}",
                book=book_code,
            ),
        )
        assert decision.approved, decision.message
        return order

    print(f"database: {connection.vendor}; {args.pairs} crossing pairs per book size; one process")
    with mock.patch("orders.submission.enqueue", lambda *a, **k: True):
        for resting in args.resting:
            for _ in range(resting):
                execution.order_execute(order_id=send(seller, "SELL", "139.99", "SELL").pk)  # far from the market
            times, cpu = [], []
            for _ in range(args.pairs):
                execution.order_execute(order_id=send(seller, "SELL", "100", "SELL").pk)
                buy = send(buyer, "BUY", "100")
                started, started_cpu = time.perf_counter(), time.process_time()
                execution.order_execute(order_id=buy.pk)  # the match: start, rebuild, trade, two fills, commit
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
            times.sort()
            p95 = times[int(len(times) * 0.95) - 1]
            median = statistics.median(times)
            print(
                f"resting {resting:>5}: match {median:6.2f} ms median, {p95:6.2f} ms p95 wall; "
                f"{statistics.median(cpu):5.2f} ms CPU of this process (median)"
            )
            from orders.models import Order

            Order.objects.filter(price=Decimal("139.99")).update(resting_seq=None, status="CANCELLED")


if __name__ == "__main__":
    main()
