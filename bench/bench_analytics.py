"""Times risk analytics: VaR of 1,000 positions by each method, and the scheduled VaR-limit run's CPU per minute.

    .venv/bin/python bench/bench_analytics.py [--runs 7] [--scopes-books 63]

1. The numeric core alone (analytics.engine, no database): 1,000 positions on 1,000 instruments (the hard
   case: every position its own risk factor), 5 % of them options on other instruments' prices and 10 % priced
   in EUR; historical over 500 scenarios, parametric, Monte Carlo with 10,000 paths. Median wall time of
   `--runs` runs each (target < 0.5 s).
2. The scheduled run (analytics.services.var_limits_check) on a fresh SQLite database in a temporary
   directory (or the empty database named by --database; never DATABASE_URL: the setup replaces every
   position): the 16 demo instruments with 520 days of generated history, 1,000
   positions spread over `--scopes-books` books in 10 desks, max_var on the firm, every desk and every book.
   CPU seconds of this process per run (time.process_time: the database work of SQLite is in-process too),
   and per minute at ANALYTICS_VAR_CHECK_SECONDS.
"""

# ruff: noqa: T201 - a benchmark script prints its figures

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# As the platform's processes run (itirp/settings.py): one BLAS thread per process unless told otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ.get("ANALYTICS_BLAS_THREADS", "1"))


def _median_seconds(fn: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """Median and max wall seconds, and median CPU seconds of this process (with one BLAS thread, the CPU
    time is the work itself: on a machine shared with other load the wall time also counts the waiting)."""
    fn()  # warm: imports, BLAS threads, caches
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), max(walls), statistics.median(cpus)


def engine_figures(runs: int, positions: int = 1000, scenarios: int = 500, paths: int = 10_000) -> list[str]:
    import numpy as np

    from analytics import engine

    rng = np.random.default_rng(1)
    factors = positions + 1  # every position its own instrument, plus EURUSD
    eur = positions
    base = rng.normal(0, 0.01, size=(scenarios, 20))
    loadings = rng.normal(0, 0.5, size=(20, factors))
    returns = base @ loadings / 4 + rng.normal(0, 0.01, size=(scenarios, factors))
    holdings = []
    for i in range(positions):
        if i % 20 == 0:  # an option on the next instrument's price
            holdings.append(
                engine.Holding(
                    quantity=float(rng.integers(1, 50)),
                    price=5.0,
                    multiplier=100.0,
                    price_factor=i + 1,
                    option=True,
                    spot=100.0,
                    strike=float(rng.choice([90.0, 100.0, 110.0])),
                    years=0.5,
                    volatility=0.25,
                    call=bool(i % 40),
                )
            )
        else:
            in_eur = i % 10 == 1
            holdings.append(
                engine.Holding(
                    quantity=float(rng.integers(-1000, 1000)),
                    price=float(rng.uniform(10, 500)),
                    fx=1.08 if in_eur else 1.0,
                    price_factor=i,
                    fx_factor=eur if in_eur else -1,
                )
            )
    book = engine.Book.of(holdings)
    load = os.getloadavg()[0]
    lines = [
        f"Load average at the start: {load:.1f} on {os.cpu_count()} cores.",
        "",
        f"Numeric core: {positions:,} positions on {factors:,} risk factors ({positions // 20} options,"
        f" {positions // 10} in EUR), {scenarios} daily scenarios; median / max of {runs} runs:",
        "",
        "| method | median wall | max wall | median CPU | VaR 99 % 1 day |",
        "|---|---|---|---|---|",
    ]
    cases = [
        ("historical (500 scenarios)", lambda: engine.historical(book, returns, confidence=0.99)),
        ("parametric (delta-normal)", lambda: engine.parametric(book, returns, confidence=0.99)),
        (
            f"Monte Carlo ({paths:,} normal paths)",
            lambda: engine.monte_carlo(book, returns, confidence=0.99, paths=paths),
        ),
        (
            f"Monte Carlo ({paths:,} Student-t paths)",
            lambda: engine.monte_carlo(book, returns, confidence=0.99, paths=paths, distribution="student_t"),
        ),
    ]
    for name, fn in cases:
        median, worst, cpu = _median_seconds(fn, runs)
        var = fn().var  # type: ignore[attr-defined]
        lines.append(f"| {name} | {median * 1000:.0f} ms | {worst * 1000:.0f} ms | {cpu * 1000:.0f} ms | {var:,.0f} |")
    return lines


def scheduled_figures(runs: int, books: int, database: str | None, positions: int = 1000) -> list[str]:
    # Its own database: the setup replaces every position, so it never runs on the one in the environment.
    os.environ["DATABASE_URL"] = database or f"sqlite:///{tempfile.mkdtemp(prefix='itirp-bench-analytics-')}/b.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("REDIS_URL", "")
    import django

    django.setup()
    from decimal import Decimal

    from django.conf import settings
    from django.core.management import call_command

    from analytics.services import var_limits_check
    from books.models import Book, Desk
    from market.models import Instrument
    from risk.models import LimitScope, Position, RiskLimits

    call_command("migrate", verbosity=0)
    call_command("load_instruments", "--new-only", verbosity=0)
    call_command("generate_history", verbosity=0)
    symbols = list(Instrument.objects.order_by("symbol").values_list("symbol", "initial_price"))
    desks = [Desk.objects.get_or_create(code=f"D{d}", defaults={"name": f"Desk {d}"})[0] for d in range(10)]
    rows: dict[tuple[str, str], Decimal] = {}
    for n in range(positions):
        book = f"B{n % books}"
        desk = desks[(n % books) % len(desks)]
        Book.objects.get_or_create(code=book, defaults={"name": book, "desk": desk})
        symbol, _price = symbols[n % len(symbols)]
        quantity = Decimal((n % 7 + 1) * (1 if n % 3 else -1))
        for scope in (f"book:{book}", f"desk:{desk.code}", "firm"):
            rows[(scope, symbol)] = rows.get((scope, symbol), Decimal(0)) + quantity
    Position.objects.all().delete()
    Position.objects.bulk_create(
        Position(scope=s, symbol=sym, quantity=q, average_price=Decimal(1)) for (s, sym), q in rows.items()
    )
    book_rows = sum(1 for (s, _), q in rows.items() if s.startswith("book:") and q)
    RiskLimits.objects.filter(scope=LimitScope.FIRM).update(max_var=Decimal("1e12"))
    for desk in desks:
        RiskLimits.objects.update_or_create(scope="DESK", scope_key=desk.code, defaults={"max_var": Decimal("1e12")})
    for b in range(books):
        RiskLimits.objects.update_or_create(scope="BOOK", scope_key=f"B{b}", defaults={"max_var": Decimal("1e12")})
    var_limits_check()  # warm
    cpu, wall = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        snapshots = var_limits_check()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    every = settings.ANALYTICS_VAR_CHECK_SECONDS
    per_run = statistics.median(cpu)
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return [
        f"Scheduled VaR-limit run ({settings.ANALYTICS_LIMIT_METHOD}, {settings.ANALYTICS_LIMIT_CONFIDENCE:g},"
        f" {settings.ANALYTICS_LOOKBACK_DAYS} days) on {database}: {len(snapshots)} scopes measured per run (firm,"
        f" 10 desks, {books} books), {book_rows} book positions over {len(symbols)} instruments; median of {runs} runs:",
        "",
        "| measure | value |",
        "|---|---|",
        f"| CPU per run (this process, incl. SQLite) | {per_run:.2f} s |",
        f"| wall per run | {statistics.median(wall):.2f} s |",
        f"| CPU per minute at one run every {every} s | {per_run * 60 / every:.2f} s ({per_run / every * 100:.1f} % of one core) |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--scopes-books", type=int, default=63)  # 63 x 16 instruments: 1,000 distinct positions
    parser.add_argument("--skip-scheduled", action="store_true")
    parser.add_argument("--database", help="a database URL to build the scheduled run's data in (default: SQLite)")
    args = parser.parse_args()
    print("\n".join(engine_figures(args.runs)))
    print()
    if not args.skip_scheduled:
        print("\n".join(scheduled_figures(max(3, args.runs // 2), args.scopes_books, args.database)))


if __name__ == "__main__":
    main()
