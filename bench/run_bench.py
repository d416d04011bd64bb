"""`make bench`: the whole performance benchmark of ITIRP in one run, written to bench/results/bench.md.

Not a test: it starts the production topology on 127.0.0.1, measures, prints, writes a markdown report, and
stops every process it started (by PID, process group included), also on Ctrl-C or an error.

1. (Re)creates the PostgreSQL database itirp_bench (fsync as the server has it), migrates it, creates a
   trader, a risk manager and a compliance user; raises the firm limits so no order is refused for volume.
2. Captures, from Django's query log, the SQL one submission executes and writes it as a pgbench script
   (every order, key and event id made unique per transaction) (bench_db.py).
3. Starts the web server (production's: python -m itirp.serve, DEBUG off, LOG_LEVEL INFO to a file), a Celery worker
   (Procfile.dev's: prefork, concurrency 2) and beat, on Redis db 8, all with DJANGO_SETTINGS_MODULE=
   bench.settings (the project's settings, plus the baseline routes); logs in over HTTP for a token.
4. Drives POST /api/v1/orders with wrk (Lua: every order unique) at 8, 32 and 64 connections, metering the
   CPU of web, worker, PostgreSQL, Redis (and a feed, --feed-pgid) over each run and the worker's drain, and
   reading group commit's batch sizes and batch times from /metrics (cost.py, cpu_meter.py).
5. Baselines: the same wrk runs against POST /api/v1/bench/baseline (a bare view without the database) and
   /api/v1/bench/guarded on a second web server, and pgbench running the captured transaction.
6. In-process: the pure risk decision and the locked service path (bench_orders.time_in_process), execution
   throughput with 2 workers and zero venue latency (bench_execution's helpers), event appends per second
   (bench_audit.py), and trail / event-list p99 through the API on 1,000,000 and (time-bounded) 10,000,000 events.

Usage: .venv/bin/python bench/run_bench.py [--duration 15] [--web gthread:1x8] [--compare-web sync:2,sync:4]
       [--drain 10] [--feed-pgid PGID] [--seed-budget 600] [--skip-events] [--out bench/results/bench.md]
"""

# ruff: noqa: S603, S607, T201 - a local script: our own commands, our own 127.0.0.1 servers

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import platform
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import bench_db
from cost import cost_lines, measure_orders
from cpu_meter import Component, postgres_backends, process_groups, redis_server
from drive import Spread, http, run_pgbench, run_wrk
from report_md import render
from servers import (
    BIN,
    ROOT,
    assert_port_free,
    load,
    log,
    on_signal,
    settings_env,
    spawn,
    stop,
    stop_all,
    wait_http,
    wait_log,
    web_command,
)

RESULTS = ROOT / "bench" / "results" / "bench.md"
RAISED = {name: "1000000000000000" for name in ("max_position_size", "max_daily_volume", "max_net_exposure")}
RAISED["max_gross_exposure"] = "1000000000000000"
LEVELS = (8, 32, 64)

# Orders submitted before the measured runs: a new database's first seconds (autovacuum, index growth, the
# first positions) are slower than its steady state, and the first run measured would pay for them.
WARM_UP_S = 10

# The commit measured for before/after unless --before names another: the last before group commit (one
# transaction per order under the risk lock, DRF's throttle).
BEFORE = "0498b0c"


def components(args: argparse.Namespace, web: int, celery: list[int], database: str = "") -> list[Component]:
    """What the CPU of a submission is spent in: the web server's and Celery's process groups, the
    PostgreSQL backends of the bench database, the Redis server, and the feed when one runs."""
    found = [
        process_groups("web", [web]),
        process_groups("worker", celery),
        postgres_backends(database or args.database),
        redis_server(urlparse(args.redis).port or 6379),
    ]
    if args.feed_pgid:
        found.append(process_groups("feed", [args.feed_pgid]))
    return found


def worker_command(name: str, concurrency: int = 2) -> list[str]:
    cmd = [str(BIN / "celery"), "-A", "itirp", "--quiet", "worker", "--loglevel", "INFO", "--concurrency"]
    cmd.append(str(concurrency))
    return cmd + ["--pool", "prefork", "--without-gossip", "--without-mingle", "--hostname", f"{name}@%h"]


# The earlier commit's own users and limits, made by its own code (run in its tree by manage.py shell).
BEFORE_SETUP = """
from decimal import Decimal
from accounts import services as a
from risk import services as r
a.user_create(actor=None, username="bench-trader", password="bench-pass-1", role="TRADER")
risk = a.user_create(actor=None, username="bench-risk", password="bench-pass-2", role="RISK_MANAGER")
r.risk_limits_update(actor=risk, reason="benchmark", **{k: Decimal(v) for k, v in %r.items()})
try:  # a commit that decides orders at market must know the bench's instruments, or it refuses every order
    import datetime as dt
    from market import prices
    from market.models import Instrument
except ImportError:
    pass
else:
    symbols = [f"SYM{n}" for n in range(50)]
    Instrument.objects.bulk_create([Instrument(symbol=s, name=s, asset_class="EQUITY", currency="USD",
        tick_size=Decimal("0.01"), lot_size=Decimal(1), initial_price=Decimal(100), staleness_seconds=86400)
        for s in symbols])  # no feed runs for it: one price, never stale during the run
    prices.record(prices.Quote(s, Decimal(100), dt.datetime.now(dt.UTC), "bench") for s in symbols)
"""


def measure_before(rev: str, args: argparse.Namespace, env: dict[str, str], var: Path) -> dict[str, Any] | None:
    """The same POST /orders runs against the web server and worker of an earlier commit (a git worktree of
    it), so the report shows before and after from one run on one machine. The earlier commit gets a database
    of its own, migrated by its own code (an order there has no book; this commit's schema requires one), and
    the same Redis: this commit's worker is stopped by then, so the earlier worker executes its orders."""
    tree = var / f"before-{rev}"
    added = subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, capture_output=True)
    if added.returncode:  # e.g. a shallow clone without that commit: the rest of the report still stands
        log(f"before/after skipped: no worktree of {rev}: {added.stderr.decode(errors='replace').strip()}")
        return None
    try:
        full = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True)
        database = f"{args.database}_before"
        log(f"before ({rev}): database {database}, migrated by that commit")
        bench_db.recreate_database(database)
        tree_env = {**env, "DATABASE_URL": f"{bench_db.PG}/{database}", "PYTHONPATH": str(tree), **settings_env(tree)}
        python = str(BIN / "python")
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=tree, env=tree_env, check=True)
        subprocess.run(
            [python, "manage.py", "shell", "-c", BEFORE_SETUP % (RAISED,)], cwd=tree, env=tree_env, check=True
        )
        granted = before_books(tree, tree_env) if not args.no_books else None
        bench_db.redis_flush(args.redis)
        worker_log = var / "worker-before.log"
        worker = spawn(worker_command("bench-before"), {**tree_env, "ITIRP_PROCESS": "worker"}, worker_log, cwd=tree)
        cmd, desc = web_command(args.web, args.port, tree)
        log_path = var / "web-before.log"
        assert_port_free(args.port)
        proc = spawn(cmd, {**tree_env, "ITIRP_PROCESS": "web"}, log_path, cwd=tree)
        base = f"http://127.0.0.1:{args.port}"
        feed = None
        if args.feed_rate and (tree / "market" / "management" / "commands" / "run_feed.py").exists():
            # The same moving prices as this commit had: a feed running for one side only was a load the
            # other side never carried (20 % of the cores at 10 quotes/s a symbol, measured).
            feed_cmd = [python, "manage.py", "run_feed", "--rate", str(args.feed_rate), "--seed", "42"]
            feed = spawn(feed_cmd, {**tree_env, "ITIRP_PROCESS": "feed"}, var / "feed-before.log", cwd=tree)
            args.feed_pgid = feed.pid
        elif args.feed_rate:
            log(f"before ({rev}) has no market-data feed: its figures carry none of this commit's feed load")
        wait_http(f"{base}/", proc, log_path)
        wait_log("ready", worker, worker_log)
        token = login(base, "bench-trader", "bench-pass-1")
        spread = spread_over_books(base, token, granted, wanted=True) if granted else None
        run_wrk(f"{base}/api/v1/orders", token, connections=8, duration=WARM_UP_S, run="warm-before", spread=spread)
        figures = [
            measure_orders(
                base,
                token,
                connections=c,
                duration=10,
                run=f"before-c{c}",
                components=components(args, proc.pid, [worker.pid], database=database),
                drain_s=args.drain,
                spread=spread,
                database=database,
            )
            for c in (8, 64)
        ]
        stop(proc)
        stop(worker)
        if feed is not None:
            stop(feed)
            args.feed_pgid = 0
        return {
            "rev": full.stdout.strip() or rev,
            "web": desc,
            "figures": figures,
            "feed": feed is not None,
            "spread": spread.describe() if spread else "one trader, default book",
        }
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)


# The earlier commit's desks, books and traders, made by its own bench_db.seed_books where it has one.
BEFORE_BOOKS = """
import json, sys
sys.path.insert(0, "bench")
import bench_db
from django.contrib.auth import get_user_model
print("GRANTED=" + json.dumps(bench_db.seed_books(get_user_model().objects.get(username="bench-trader"))))
"""


def before_books(tree: Path, tree_env: dict[str, str]) -> dict[str, list[str]] | None:
    """The same spread over desks, books and traders for the earlier commit as for this one (the load over
    one trader and one book touches fewer rows), where its bench can seed them; None otherwise."""
    seeder = tree / "bench" / "bench_db.py"
    if not seeder.exists() or "def seed_books" not in seeder.read_text(errors="replace"):
        return None
    done = subprocess.run(
        [str(BIN / "python"), "manage.py", "shell", "-c", BEFORE_BOOKS],
        cwd=tree,
        env={**tree_env, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("GRANTED="):
            return dict(json.loads(line.removeprefix("GRANTED=")))
    log(f"before: its books could not be seeded ({done.stderr.strip()[-300:]}); one trader, default book")
    return None


def login(base: str, username: str, password: str) -> str:
    status, tokens = http("POST", f"{base}/api/v1/auth/login", {"username": username, "password": password})
    assert status == 200, tokens
    return str(tokens["access_token"])


def spread_over_books(base: str, token: str, granted: dict[str, list[str]], wanted: bool) -> Spread | None:
    """The books' spread of the load, where the server under test has books (GET /api/v1/books answers
    200): every bench trader's token and books. None: one trader, no "book" in the body."""
    if not wanted:
        return None
    status, _ = http("GET", f"{base}/api/v1/books", token=token)
    if status != 200:
        log(f"GET /api/v1/books answered {status}: the load names no book")
        return None
    spread = Spread(
        tokens=[login(base, name, bench_db.TRADER_PASSWORD) for name in granted], books=list(granted.values())
    )
    log(f"the load spreads over {spread.describe()}")
    return spread


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8108)
    parser.add_argument("--baseline-port", type=int, default=8109)
    parser.add_argument("--database", default="itirp_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    parser.add_argument(
        "--web",
        default="serve:1x8",
        help="serve:NxT (production's, itirp.serve; an earlier commit's own), gthread:NxT, sync:N, granian:NxT",
    )
    parser.add_argument(
        "--compare-web",
        default="gthread:1x8,gthread:2x4,sync:2,granian:2x4,uvicorn:2",
        help="comma-separated other --web values, measured at 8 connections",
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk / pgbench run")
    parser.add_argument(
        "--drain",
        type=float,
        default=10,
        help="seconds the worker is given after each POST /orders run (CPU counted): issue 19's target, within 10 s",
    )
    parser.add_argument(
        "--feed-pgid", type=int, default=0, help="process group of a market-data feed: its CPU is a component"
    )
    parser.add_argument(
        "--feed-rate",
        type=float,
        default=10,
        help="the simulated feed's updates per second per instrument (50 instruments) while orders are measured;"
        " 0: no feed",
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=2, help="the Celery worker's pool processes (this commit's)"
    )
    parser.add_argument("--exec-orders", type=int, default=300)
    parser.add_argument("--seed-budget", type=int, default=600, help="seconds allowed for seeding towards 10M")
    parser.add_argument("--skip-events", action="store_true", help="skip the 1M/10M event-store part")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--orders-only",
        action="store_true",
        help="a quick look while working: only POST /orders at 8 connections (CPU per order included), printed,"
        " no report written",
    )
    parser.add_argument(
        "--before",
        default=BEFORE,
        help="a commit whose web server is measured in the same run (8 and 64 connections), for before/after;"
        " '' to skip",
    )
    parser.add_argument(
        "--no-books",
        action="store_true",
        help="send every order as bench-trader in its default book, even where the server has books",
    )
    parser.add_argument("--hold", type=int, default=0, help="with --orders-only: keep the servers up N s (profiling)")
    return parser.parse_args()


def environment(args: argparse.Namespace, var: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"{bench_db.PG}/{args.database}",
        "REDIS_URL": args.redis,
        "ITIRP_VAR_DIR": str(var),
        "PROMETHEUS_MULTIPROC_DIR": str(var / "metrics"),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "LOG_LEVEL": "INFO",
        # plain HTTP on loopback, as behind the TLS-terminating proxy of a deployment
        "SECURE_SSL_REDIRECT": "0",
        # one benchmark user: the per-user order throttle (6000/min) would cap it at 100 orders/s
        "ORDER_THROTTLE_RATE": "100000000/min",
        # The simulated venue fails 10 % of calls at random: with the breaker's default of 5 consecutive
        # failures, a run of several thousand calls had a few percent chance of opening it, failing every
        # queued order for 60 s (seen twice in a session, on one side of a before/after run). 20 in a row
        # (1e-20) keeps the breaker out of the measurement, on both sides (the earlier commit reads it too).
        "BREAKER_FAILURE_THRESHOLD": os.environ.get("BREAKER_FAILURE_THRESHOLD", "20"),
        "PYTHONPATH": str(ROOT),
        **settings_env(ROOT),
    }
    if env["DJANGO_SETTINGS_MODULE"] == "bench.settings":
        env.pop("ITIRP_BENCH_BASELINE", None)
    return env


def report_header(args: argparse.Namespace) -> dict[str, Any]:
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    return {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "cores": os.cpu_count(),
        "cpu": model or platform.machine(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", "orders", "risk", "audit", "accounts", "itirp", "core")),
        "argv": shlex.join(sys.argv[1:]),
        "drain_s": args.drain,
    }


def baselines(args: argparse.Namespace, env: dict[str, str], var: Path, token: str, report: dict[str, Any]) -> None:
    """The bare view and the guarded view (bench/urls.py) on a second web server."""
    log("baseline: the bare view without the database")
    baseline_cmd, _ = web_command(args.web, args.baseline_port)
    baseline_log = var / "baseline.log"
    assert_port_free(args.baseline_port)
    baseline = spawn(baseline_cmd, {**env, "ITIRP_PROCESS": "web"}, baseline_log)
    wait_http(f"http://127.0.0.1:{args.baseline_port}/", baseline, baseline_log)
    url = f"http://127.0.0.1:{args.baseline_port}/api/v1/bench/baseline"
    run_wrk(url, "", connections=8, duration=3, run="bwarm")
    report["baseline"] = [run_wrk(url, "", connections=c, duration=args.duration, run=f"b{c}") for c in LEVELS]
    url = f"http://127.0.0.1:{args.baseline_port}/api/v1/bench/guarded"
    run_wrk(url, token, connections=8, duration=3, run="gwarm")
    report["guarded"] = [run_wrk(url, token, connections=c, duration=args.duration, run=f"g{c}") for c in LEVELS]
    stop(baseline)


def back_end(args: argparse.Namespace, env: dict[str, str], trader: Any, report: dict[str, Any]) -> None:
    """In-process figures, execution throughput, event appends and the event store's queries."""
    from django.db import connection

    log("in-process: the risk decision (bench_orders.time_in_process)")
    import bench_orders

    report["inproc"] = bench_orders.time_in_process(trader, 300)
    connection.close()

    log("execution throughput: 2 workers, venue latency 0 (bench_execution helpers)")
    try:
        report["execution"] = bench_db.execution_throughput(args.exec_orders, args.redis)
    except (SystemExit, Exception) as exc:  # noqa: BLE001 - reported, and the rest of the run goes on
        log(f"execution phase failed: {exc}")
        report["execution"] = {"error": str(exc)}

    log("event appends per second (bench_audit.py)")
    cmd = [str(BIN / "python"), "bench/bench_audit.py", "--writers", "4", "--seconds", "10", "--rounds", "1"]
    done = subprocess.run(cmd, cwd=ROOT, env={**env, "LOG_LEVEL": "ERROR"}, capture_output=True, text=True)
    report["audit"] = {"command": shlex.join(cmd), "output": (done.stdout + done.stderr).strip()}
    log(report["audit"]["output"])

    log("risk analytics: VaR of 1,000 positions, the scheduled VaR run (bench_analytics.py, its own SQLite)")
    cmd = [str(BIN / "python"), "bench/bench_analytics.py"]
    quiet = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    done = subprocess.run(cmd, cwd=ROOT, env={**quiet, "LOG_LEVEL": "ERROR"}, capture_output=True, text=True)
    report["analytics"] = {"command": shlex.join(cmd), "output": (done.stdout + done.stderr).strip()}
    log(report["analytics"]["output"])

    report["events"] = []
    if not args.skip_events:
        compliance = bench_db.http_login_inproc("bench-compliance", "bench-pass-3")
        for target, budget in ((1_000_000, 3600), (10_000_000, args.seed_budget)):
            count, seconds = bench_db.seed_to(target, budget, env)
            log(f"event table: {count:,} rows (seeding took {seconds:.0f} s); timing queries")
            report["events"].append(
                {"target": target, "count": count, "seed_s": seconds, "queries": bench_db.time_queries(compliance, 200)}
            )
            if count < target:
                break


def main() -> None:  # noqa: PLR0915 - one linear script, read top to bottom
    args = arguments()
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    var = Path(tempfile.mkdtemp(prefix="itirp-bench-h8-"))
    env = environment(args, var)
    os.environ.update(env)
    (var / "metrics").mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    report = report_header(args)
    log(f"{report['uptime_before']}; {report['cores']} cores ({report['cpu']})")

    log(f"recreating database {args.database} and migrating")
    bench_db.recreate_database(args.database)
    subprocess.run([str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    from django.db import connection

    from accounts import services as account_services
    from risk import services as risk_services

    trader = account_services.user_create(actor=None, username="bench-trader", password="bench-pass-1", role="TRADER")
    risk = account_services.user_create(actor=None, username="bench-risk", password="bench-pass-2", role="RISK_MANAGER")
    account_services.user_create(actor=None, username="bench-compliance", password="bench-pass-3", role="COMPLIANCE")
    granted = bench_db.seed_books(trader)
    bench_db.seed_instruments(fed=bool(args.feed_rate or args.feed_pgid))
    risk_services.risk_limits_update(actor=risk, reason="benchmark", **{k: Decimal(v) for k, v in RAISED.items()})
    statements, pgbench_script = bench_db.capture_submission_sql(trader)
    report["sql"] = statements
    report["pgbench_script"] = pgbench_script
    log(f"one submission = {len(statements)} SQL statements")
    connection.close()
    bench_db.redis_flush(args.redis)

    base = f"http://127.0.0.1:{args.port}"
    web_cmd, web_desc = web_command(args.web, args.port)
    report["web"] = web_desc
    web_log, worker_log, beat_log = var / "web.log", var / "worker.log", var / "beat.log"
    assert_port_free(args.port)
    web = spawn(web_cmd, {**env, "ITIRP_PROCESS": "web"}, web_log)
    worker_cmd = worker_command("bench-h8", args.worker_concurrency)
    worker = spawn(worker_cmd, {**env, "ITIRP_PROCESS": "worker"}, worker_log)
    beat_cmd = [str(BIN / "celery"), "-A", "itirp", "--quiet", "beat", "--loglevel", "INFO"]
    beat_cmd += ["--schedule", str(var / "celerybeat-schedule")]
    beat = spawn(beat_cmd, {**env, "ITIRP_PROCESS": "beat"}, beat_log)
    report["topology"] = [shlex.join(web_cmd), shlex.join(worker_cmd), shlex.join(beat_cmd)]
    feed = None
    if args.feed_rate and not args.feed_pgid:
        # Prices moving while orders are decided: the simulated feed over the 50 bench instruments.
        feed_cmd = [str(BIN / "python"), "manage.py", "run_feed", "--rate", str(args.feed_rate), "--seed", "42"]
        feed = spawn(feed_cmd, {**env, "ITIRP_PROCESS": "feed"}, var / "feed.log")
        args.feed_pgid = feed.pid  # spawned in a session of its own: its pid is its process group
        report["topology"].append(shlex.join(feed_cmd))
    wait_http(f"{base}/", web, web_log)
    wait_log("ready", worker, worker_log)
    celery = [worker.pid, beat.pid]
    report["components"] = [c.name for c in components(args, web.pid, celery)]

    token = login(base, "bench-trader", "bench-pass-1")
    spread = spread_over_books(base, token, granted, wanted=not args.no_books)
    report["spread"] = spread.describe() if spread else "one trader, default book"
    log(f"warm-up {WARM_UP_S} s")
    run_wrk(f"{base}/api/v1/orders", token, connections=8, duration=WARM_UP_S, run="warm", spread=spread)

    def measured(connections: int, run: str, web_pid: int = web.pid) -> dict[str, Any]:
        parts = components(args, web_pid, celery)
        return measure_orders(
            base,
            token,
            connections=connections,
            duration=args.duration,
            run=run,
            components=parts,
            drain_s=args.drain,
            spread=spread,
            database=args.database,
        )

    if args.orders_only:
        if args.hold:
            log(f"holding the servers {args.hold} s (web pid {web.pid}); token in {var / 'token'}")
            (var / "token").write_text(token)
            time.sleep(args.hold)
        quick = measured(8, "quick")
        print("\n".join(cost_lines([("quick", quick)], report["components"], args.drain)))
        return
    report["load_orders"] = load()
    report["orders"] = [measured(c, f"c{c}") for c in LEVELS]
    stop(web)

    report["compare_web"] = []
    for server in [s for s in args.compare_web.split(",") if s]:
        cmd, desc = web_command(server, args.port)
        assert_port_free(args.port)
        proc = spawn(cmd, {**env, "ITIRP_PROCESS": "web"}, var / f"web-{server.replace(':', '-')}.log")
        wait_http(f"{base}/", proc, var / f"web-{server.replace(':', '-')}.log")
        url = f"{base}/api/v1/orders"
        run_wrk(url, token, connections=8, duration=3, run=f"warm-{server}", spread=spread)
        # Metered like the runs above (CPU per order by component): the machine is CPU-bound, so what a
        # server costs per order decides, more than one window's orders/s.
        figures = measured(8, server, web_pid=proc.pid)
        report["compare_web"].append((desc, figures))
        stop(proc)

    stop(beat)
    stop(worker)
    if feed is not None:  # the earlier commit runs its own feed, at the same rate, where it has one
        stop(feed)
        args.feed_pgid = 0
    report["before"] = measure_before(args.before, args, env, var) if args.before else None
    report["cost"] = [(f"this commit, {o['connections']} conns", o) for o in report["orders"]]
    report["cost"] += [(f"this commit, {desc}", f) for desc, f in report["compare_web"]]
    if report["before"]:
        b = report["before"]
        report["cost"] += [(f"before ({b['rev']}), {f['connections']} conns", f) for f in b["figures"]]

    baselines(args, env, var, token, report)
    log("baseline: pgbench running one submission's SQL")
    report["pgbench"] = [run_pgbench(args.database, pgbench_script, c, args.duration) for c in LEVELS]
    back_end(args, env, trader, report)

    report["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    stop_all()
    text = render(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    log(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
