"""Benchmark of order submission: POST /api/v1/orders through gunicorn, and the risk decision in-process.

Not a test: it prints figures and writes them to bench/results/orders.md. What it does:
1. (re)creates the PostgreSQL database itirp_bench_h3 and migrates it, creates a trader and a risk manager;
2. starts gunicorn (2 sync workers, DEBUG off) on 127.0.0.1:8103 against it, with Redis as the broker;
3. logs in over HTTP, raises the limits with PUT /api/v1/risk/limits so no order is refused for volume
   (no Celery worker runs, so every approved order stays open and keeps its reservation);
4. drives POST /api/v1/orders with wrk for a bounded time, every request a unique order (Lua script),
   and prints orders/s and the latency percentiles; optionally a second run at the seed limits;
5. stops gunicorn and times, in this process, the pure check_order (µs) and the locked service path
   order_submit (ms) against the same database.

Usage: .venv/bin/python bench/bench_orders.py [--duration 20] [--connections 4] [--also-seed-limits]
"""

# ruff: noqa: S603, S607, S310, S108 - a local script: it runs our own commands and talks to our own 127.0.0.1 server

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import drive  # the bench's own modules (bench/ is this script's directory)
from percentiles import percentile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "orders.md"
PG = "postgres://postgres@127.0.0.1:5432"
RAISED = {
    "max_position_size": "1000000000000000",
    "max_daily_volume": "1000000000000000",
    "max_net_exposure": "1000000000000000",
    "max_gross_exposure": "1000000000000000",
}
SEED = {
    "max_position_size": "1000000",
    "max_daily_volume": "10000000",
    "max_net_exposure": "5000000",
    "max_gross_exposure": "15000000",
}


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    return drive.http(method, url, body, token, timeout=10)


def git_state() -> tuple[str, list[str]]:
    """The commit measured, and the tracked files that differed from it (a shared checkout moves)."""
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    dirty = [f"`{line[3:]}`" for line in status.splitlines() if line[3:].endswith(".py")]
    return revision or "unknown", dirty


def recreate_database(name: str) -> None:
    import psycopg

    if not name.endswith("_h3"):
        raise SystemExit(f"refusing to drop {name}: only *_h3 databases belong to this benchmark")
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def start_gunicorn(env: dict[str, str], port: int, workers: int, log_path: Path) -> subprocess.Popen:
    cmd = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "itirp.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--graceful-timeout",
        "5",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"gunicorn not answering on {port}:\n{log_path.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def run_wrk(url: str, token: str, *, threads: int, connections: int, duration: int, run: str) -> dict[str, Any]:
    figures = drive.wrk(url, token, threads=threads, connections=connections, duration=duration, run=run)
    figures["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", figures["raw"]).group(1))  # type: ignore[union-attr]
    return figures


def time_in_process(trader: Any, iterations: int) -> dict[str, float]:
    """The risk decision alone (pure) and the locked service path, timed here without HTTP."""
    from django.db import transaction

    from orders.submission import OrderRequest, order_submit
    from risk import checks, store

    with transaction.atomic():
        snapshot = store.snapshot(store.lock())
    today = store.utc_today()
    intent = checks.OrderIntent(symbol="SYM7", side=checks.Side.BUY, quantity=Decimal(10), price=Decimal("100.25"))
    pure: list[float] = []
    for _ in range(2000):  # warm-up
        checks.check_order(intent, snapshot, today)
    for _ in range(20000):
        start = time.perf_counter_ns()
        checks.check_order(intent, snapshot, today)
        pure.append((time.perf_counter_ns() - start) / 1000)

    service: list[float] = []
    for i in range(iterations):
        request = OrderRequest(
            symbol=f"SYM{i % 50}",
            side="BUY",
            quantity=Decimal(1 + i % 97),
            price=Decimal("100.25"),
            client_order_id=f"inproc-{i}",
        )
        start = time.perf_counter_ns()
        order_submit(user=trader, request=request)
        service.append((time.perf_counter_ns() - start) / 1e6)
    return {
        "books": len(snapshot.books),
        "pure_p50_us": percentile(pure, 50),
        "pure_p99_us": percentile(pure, 99),
        "pure_mean_us": statistics.fmean(pure),
        "service_p50_ms": percentile(service, 50),
        "service_p99_ms": percentile(service, 99),
        "service_mean_ms": statistics.fmean(service),
        "service_n": iterations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8103)
    parser.add_argument("--database", default="itirp_bench_h3")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--in-process-orders", type=int, default=500)
    parser.add_argument("--also-seed-limits", action="store_true", help="a second run at the seed limits")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write bench/results/orders.md")
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{args.database}",
        "REDIS_URL": args.redis,
        "ITIRP_VAR_DIR": "/tmp/itirp-bench-h3",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        # the per-user order throttle (6000/min by default) would cap one benchmark user at 100 orders/s
        "ORDER_THROTTLE_RATE": "100000000/min",
        # plain HTTP on 127.0.0.1, as behind the TLS-terminating proxy of production: no redirect to https
        "SECURE_SSL_REDIRECT": "0",
        "DJANGO_SETTINGS_MODULE": "itirp.settings",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))

    log(f"recreating database {args.database} and migrating")
    recreate_database(args.database)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts import services as account_services
    from itirp.celery import app as celery_app
    from orders.models import Order

    call_command("migrate", interactive=False, verbosity=0)
    trader = account_services.user_create(actor=None, username="bench-trader", password="bench-pass-1", role="TRADER")
    account_services.user_create(actor=None, username="bench-risk", password="bench-pass-2", role="RISK_MANAGER")
    celery_app.control.purge()
    connection.close()

    base = f"http://127.0.0.1:{args.port}/api/v1"
    gunicorn_log = Path(tempfile.mkdtemp(prefix="itirp-bench-")) / "gunicorn.log"
    log(f"starting gunicorn ({args.workers} workers) on 127.0.0.1:{args.port}; log {gunicorn_log}")
    proc = start_gunicorn(env, args.port, args.workers, gunicorn_log)
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    revision, dirty = git_state()
    runs: list[tuple[str, dict[str, Any]]] = []
    try:
        status, tokens = http("POST", f"{base}/auth/login", {"username": "bench-trader", "password": "bench-pass-1"})
        assert status == 200, tokens
        status, risk_tokens = http("POST", f"{base}/auth/login", {"username": "bench-risk", "password": "bench-pass-2"})
        assert status == 200, risk_tokens
        status, limits = http("PUT", f"{base}/risk/limits", RAISED, risk_tokens["access_token"])
        assert status == 200, limits
        log(f"limits raised: {limits}")
        log("warm-up 3 s")
        run_wrk(
            f"{base}/orders",
            tokens["access_token"],
            threads=args.threads,
            connections=args.connections,
            duration=3,
            run="warm",
        )
        runs.append(
            (
                "raised limits (no order refused for volume)",
                run_wrk(
                    f"{base}/orders",
                    tokens["access_token"],
                    threads=args.threads,
                    connections=args.connections,
                    duration=args.duration,
                    run="raised",
                ),
            )
        )
        if args.also_seed_limits:
            status, limits = http("PUT", f"{base}/risk/limits", SEED, risk_tokens["access_token"])
            assert status == 200, limits
            runs.append(
                (
                    "seed limits again (1M position, 10M volume, 5M net, 15M gross) over the book the first run left",
                    run_wrk(
                        f"{base}/orders",
                        tokens["access_token"],
                        threads=args.threads,
                        connections=args.connections,
                        duration=args.duration,
                        run="seed",
                    ),
                )
            )
            http("PUT", f"{base}/risk/limits", RAISED, risk_tokens["access_token"])
    finally:
        stop(proc)
    load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())

    from django.db.models import Count

    breakdown = dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by())
    log(f"orders in the database after the HTTP runs: {breakdown}")
    log(f"timing check_order and order_submit in-process ({args.in_process_orders} orders)")
    inproc = time_in_process(trader, args.in_process_orders)
    celery_app.control.purge()  # no worker ran: drop the queued execution tasks
    connection.close()

    lines = [
        "# Order submission benchmark",
        "",
        f"Run {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} with:",
        "",
        "```",
        shlex.join([".venv/bin/python", "bench/bench_orders.py", *sys.argv[1:]]),
        "```",
        "",
        f"Code: commit `{revision}`" + (f", with uncommitted changes in {', '.join(dirty)}." if dirty else "."),
        "",
        f"Load average (1/5/15 min) before the HTTP runs: {load_before}; after: {load_after}.",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), shared with other work during"
        " the run; PostgreSQL and Redis on 127.0.0.1; gunicorn "
        f"{args.workers} sync workers, DEBUG off, database `{args.database}` (recreated and migrated by the script),"
        f" broker Redis `{args.redis}` (no Celery worker: approved orders stay open and keep their reservations).",
        "Every request is a unique order (client_order_id per request, 50 symbols, BUY/SELL, quantity 1-97 @ 100.25),"
        " sent by wrk with a Lua script. The per-user order throttle was raised for the run (ORDER_THROTTLE_RATE);"
        " SECURE_SSL_REDIRECT=0 (plain HTTP on 127.0.0.1, as behind the TLS proxy of production).",
        "",
        "## HTTP: POST /api/v1/orders",
        "",
        "| run | orders/s | p50 ms | p90 ms | p99 ms | max ms | approved | rejected | other status | socket errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs:
        lines.append(
            f"| {name} | {r['rps']:.1f} | {r['p50_us'] / 1000:.2f} | {r['p90_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} |"
            f" {r['max_us'] / 1000:.1f} | {r['approved']} | {r['rejected']} | {r['other']} | {r['errors']} |"
        )
    lines += ["", "wrk command lines:", ""] + [f"- `{r['command']}`" for _, r in runs]
    lines += [
        "",
        "## In-process: the risk decision",
        "",
        "| what | p50 | p99 | mean |",
        "|---|---|---|---|",
        f"| pure `risk.checks.check_order` ({inproc['books']} symbol books, 20,000 calls) |"
        f" {inproc['pure_p50_us']:.1f} µs | {inproc['pure_p99_us']:.1f} µs | {inproc['pure_mean_us']:.1f} µs |",
        f"| locked service path `orders.submission.order_submit` ({inproc['service_n']} orders: lock, checks, insert,"
        " reservation, 3 events, commit, queue on commit) |"
        f" {inproc['service_p50_ms']:.2f} ms | {inproc['service_p99_ms']:.2f} ms | {inproc['service_mean_ms']:.2f} ms |",
        "",
        f"Orders in the database after the HTTP runs: `{json.dumps(breakdown, sort_keys=True)}`.",
        "",
        "Every decision takes the one RiskState row lock, so submissions are serialised by design: throughput is"
        " bounded by the time the lock is held (the locked service path above) more than by web workers.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    for _, r in runs:
        print(r["raw"])
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        log(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
