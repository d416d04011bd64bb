"""`make bench`: the whole performance benchmark of ITIRP in one run, written to bench/results/bench.md.

Not a test: it starts the production topology on 127.0.0.1, measures, prints, writes a markdown report, and
stops every process it started (by PID, process group included), also on Ctrl-C or an error.

1. (Re)creates the PostgreSQL database itirp_bench (fsync as the server has it), migrates it, creates a
   trader, a risk manager and a compliance user; raises the firm limits so no order is refused for volume.
2. Captures, from Django's query log, the SQL one submission executes and writes it as a pgbench script
   (every order, key and event id made unique per transaction).
3. Starts gunicorn (the production gunicorn.conf.py, DEBUG off, LOG_LEVEL INFO to a file), a Celery worker
   (Procfile.dev's: prefork, concurrency 2) and beat, on Redis db 8; logs in over HTTP for a token.
4. Drives POST /api/v1/orders with wrk (Lua: every order unique) at 8, 32 and 64 connections.
5. Baselines: the same wrk runs against POST /api/v1/bench/baseline (a bare view without the database, routed
   only when ITIRP_BENCH_BASELINE=1, on a second gunicorn), and pgbench running the captured transaction.
6. In-process: the pure risk decision and the locked service path (bench_orders.time_in_process), execution
   throughput with 2 workers and zero venue latency (bench_execution's helpers), event appends per second
   (bench_audit.py), and trail / event-list p99 through the API on 1,000,000 and (time-bounded) 10,000,000 events.

Usage: .venv/bin/python bench/run_bench.py [--duration 15] [--web gthread:2x4] [--compare-web sync:2,sync:4]
       [--seed-budget 600] [--skip-events] [--out bench/results/bench.md]
"""

# ruff: noqa: S603, S607, S310, S108, T201 - a local script: our own commands, our own 127.0.0.1 servers

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import platform
import re
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PG = "postgres://postgres@127.0.0.1:5432"
RESULTS = ROOT / "bench" / "results" / "bench.md"
RAISED = {name: "1000000000000000" for name in ("max_position_size", "max_daily_volume", "max_net_exposure")}
RAISED["max_gross_exposure"] = "1000000000000000"
LEVELS = (8, 32, 64)

# Orders submitted before the measured runs: a new database's first seconds (autovacuum, index growth, the
# first positions) are slower than its steady state, and the first run measured would pay for them.
WARM_UP_S = 10

# The last commit before group commit (one transaction per order under the risk lock, DRF's throttle).
BEFORE = "0498b0c"

LUA_SCRIPT = Path(__file__).resolve().parent / "orders.lua"  # shared with bench_orders.py

STARTED: list[subprocess.Popen] = []


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# --- processes ---------------------------------------------------------------------------------------------


def spawn(cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """Start a process in its own session (so its children can be stopped with it) and remember its PID."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    STARTED.append(proc)
    log(f"started pid {proc.pid}: {shlex.join(cmd)} (log {log_path})")
    return proc


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group led by this PID, SIGKILL it after 20 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
    # children left behind by a leader that already exited: the group is still addressable by its id
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc in STARTED:
        STARTED.remove(proc)


def stop_all() -> None:
    for proc in list(reversed(STARTED)):
        stop(proc)


def _on_signal(signum: int, _frame: Any) -> None:
    stop_all()
    raise SystemExit(128 + signum)


def wait_http(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} not answering:\n{log_path.read_text()[-3000:]}")


def wait_log(text: str, proc: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process exited:\n{log_path.read_text()[-3000:]}")
        if text in log_path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise SystemExit(f"no {text!r} in {log_path}:\n{log_path.read_text()[-3000:]}")


def web_command(server: str, port: int) -> tuple[list[str], str]:
    """The web server command for --web KIND:WORKERS[xTHREADS]: gunicorn sync or gthread workers."""
    kind, _, size = server.partition(":")
    workers, _, threads = (size or "2").partition("x")
    bind = f"127.0.0.1:{port}"
    if kind in ("sync", "gthread"):
        cmd = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "itirp.wsgi:application", "--bind", bind]
        cmd += ["--workers", workers, "--worker-class", kind, "--no-control-socket"]
        if kind == "gthread":
            cmd += ["--threads", threads or "4"]
        return cmd, f"gunicorn {kind}, {workers} workers" + (f" x {threads or 4} threads" if kind == "gthread" else "")
    raise SystemExit(f"unknown --web {server!r}")


def measure_before(
    rev: str, server: str, port: int, env: dict[str, str], var: Path, token: str
) -> dict[str, Any] | None:
    """The same POST /orders runs against the web server of an earlier commit (a git worktree of it, same
    database, same worker), so the report shows before and after from one run on one machine."""
    tree = var / f"before-{rev}"
    added = subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, capture_output=True)
    if added.returncode:  # e.g. a shallow clone without that commit: the rest of the report still stands
        log(f"before/after skipped: no worktree of {rev}: {added.stderr.decode(errors='replace').strip()}")
        return None
    try:
        full = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True)
        cmd, desc = web_command(server, port)
        log_path = var / "web-before.log"
        proc = spawn(cmd, {**env, "ITIRP_PROCESS": "web", "PYTHONPATH": str(tree)}, log_path, cwd=tree)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/", proc, log_path)
        run_wrk(f"{base}/api/v1/orders", token, connections=8, duration=WARM_UP_S, run="warm-before")
        figures = [
            run_wrk(f"{base}/api/v1/orders", token, connections=c, duration=10, run=f"before-c{c}") for c in (8, 64)
        ]
        stop(proc)
        return {"rev": full.stdout.strip() or rev, "web": desc, "figures": figures}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)


# --- HTTP and wrk ------------------------------------------------------------------------------------------


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def run_wrk(url: str, token: str, *, connections: int, duration: int, run: str) -> dict[str, Any]:
    script = LUA_SCRIPT
    cmd = ["/usr/bin/wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency"]
    cmd += ["-s", str(script), url]
    log("$ " + shlex.join(cmd))
    out = subprocess.run(
        cmd, env={**os.environ, "BENCH_TOKEN": token, "BENCH_RUN": run}, capture_output=True, text=True, check=True
    ).stdout
    figures: dict[str, Any] = {"command": shlex.join(cmd), "connections": connections}
    for key, value in re.findall(r"(\w+)=(\d+)", "\n".join(line for line in out.splitlines() if "BENCH" in line)):
        figures[key] = int(value)
    figures["ok"] = figures["approved"] + figures["rejected"]  # answered 200, whatever the risk decision
    figures["non200"] = figures["other"]
    figures["rps"] = figures["ok"] / (figures["duration_us"] / 1e6)  # answered 200 per second
    log(
        f"   {figures['rps']:.0f} ok/s, p50 {figures['p50_us'] / 1000:.1f} ms, p99 {figures['p99_us'] / 1000:.1f} ms,"
        f" max {figures['max_us'] / 1000:.0f} ms, non-200 {figures['non200']}, socket errors {figures['errors']}"
    )
    return figures


# --- database ----------------------------------------------------------------------------------------------


def recreate_database(name: str) -> None:
    import psycopg

    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name}: the benchmark only recreates databases named *bench*")
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


UUID_RE = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b")
ARRAY_RE = re.compile(r"'\{([^}']*)\}'(::uuid\[\])")
HEX64_RE = re.compile(r"'([0-9a-f]{64})'")


def capture_submission_sql(trader: Any) -> tuple[list[str], str]:
    """The SQL statements one order_submit runs (Django's query log) in steady state (its symbol already has
    a position row), and a pgbench script of them where every UUID, the execution key and the client order
    id are made unique per transaction."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.submission import OrderRequest, order_submit

    def request(cid: str) -> OrderRequest:
        return OrderRequest(
            symbol="SYM7", side="BUY", quantity=Decimal(3), price=Decimal("100.25"), client_order_id=cid
        )

    order_submit(user=trader, request=request(f"first-{uuid.uuid4().hex[:8]}"))
    cid = f"capture-{uuid.uuid4().hex[:8]}"
    with CaptureQueriesContext(connection) as captured:
        order_submit(user=trader, request=request(cid))
    statements = [q["sql"] for q in captured.captured_queries]
    names: dict[str, str] = {}

    def fresh(raw: str) -> str:
        var = names.setdefault(raw.replace("-", ""), f"u{len(names)}")
        return f"md5(:client_id::text || '-' || :seed::text || '-{var}')::uuid"

    def array_sub(match: re.Match[str]) -> str:
        items = [("NULL" if item == "NULL" else fresh(item)) for item in match.group(1).split(",")]
        return f"ARRAY[{', '.join(items)}]{match.group(2)}"

    def quoted_uuid(match: re.Match[str]) -> str:
        return fresh(match.group(1))

    script = ["\\set seed random(1, 1000000000000)"]
    for sql in statements:
        body = sql.strip().rstrip(";")
        if body.upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            continue
        body = HEX64_RE.sub("(md5(:client_id::text || '-' || :seed::text) || md5(:seed::text))", body)
        body = ARRAY_RE.sub(array_sub, body)
        body = re.sub(r"'(" + UUID_RE.pattern + r")'", quoted_uuid, body)
        body = body.replace(f"'{cid}'", "('pg-' || :client_id::text || '-' || :seed::text)")
        script.append(body + ";")
    return statements, "\n".join(line.replace("\n", " ") for line in script) + "\n"


def run_pgbench(database: str, script: str, clients: int, duration: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp(prefix="itirp-bench-")) / "submission.sql"
    path.write_text(script)
    cmd = ["/usr/bin/pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-r", "-f", str(path)]
    cmd += ["-c", str(clients), "-j", "2", "-T", str(duration), database]
    log("$ " + shlex.join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True)
    out = done.stdout + done.stderr
    tps = re.search(r"tps = ([\d.]+)", out)
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    figures = {
        "command": shlex.join(cmd),
        "clients": clients,
        "tps": float(tps.group(1)) if tps else 0.0,
        "latency_ms": float(lat.group(1)) if lat else 0.0,
        "failed": int(failed.group(1)) if failed else -1,
        "raw": out,
    }
    log(f"   pgbench {figures['tps']:.0f} tps, latency avg {figures['latency_ms']:.2f} ms, failed {figures['failed']}")
    if not tps:
        log(out[-2000:])
    return figures


# --- event store queries -----------------------------------------------------------------------------------


def seed_to(target: int, budget_s: float, env: dict[str, str]) -> tuple[int, float]:
    """Seed events in 1,000,000-row chunks until the table holds `target` or the time budget is spent."""
    from audit.models import Event

    started = time.monotonic()
    count = Event.objects.count()
    while count < target and time.monotonic() - started < budget_s:
        chunk = min(1_000_000, target - count)
        cmd = [str(BIN / "python"), "manage.py", "seed_events", "--count", str(chunk), "--seed", str(count)]
        log(f"$ {shlex.join(cmd)}   (table has {count:,}; budget left {budget_s - (time.monotonic() - started):.0f} s)")
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        count = Event.objects.count()
    return count, time.monotonic() - started


def time_queries(token: str, samples: int) -> dict[str, Any]:
    """p50/p99 ms of the order trail and the event list through the whole API path (Django test client)."""
    import random

    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT order_id FROM audit_event TABLESAMPLE SYSTEM (0.1) WHERE order_id IS NOT NULL LIMIT %s",
            [samples * 4],
        )
        order_ids = [str(row[0]) for row in cursor.fetchall()]
    rng = random.Random(8)
    rng.shuffle(order_ids)
    order_ids = (order_ids or ["00000000-0000-0000-0000-000000000000"])[:samples]
    queries = {
        "order trail (GET /audit/order/{id}/trail)": [f"/api/v1/audit/order/{oid}/trail" for oid in order_ids],
        "event list (GET /audit/events?limit=100)": ["/api/v1/audit/events?limit=100"] * samples,
        "event list by type (GET /audit/events?event_type=EXECUTION_COMPLETED&limit=100)": [
            "/api/v1/audit/events?event_type=EXECUTION_COMPLETED&limit=100"
        ]
        * samples,
    }
    figures: dict[str, Any] = {}
    for name, urls in queries.items():
        client.get(urls[0])  # warm-up
        times, statuses = [], set()
        for url in urls:
            began = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - began) * 1000)
            statuses.add(response.status_code)
        figures[name] = {
            "n": len(times),
            "p50": percentile(times, 50),
            "p99": percentile(times, 99),
            "max": max(times),
            "statuses": sorted(statuses),
        }
        log(f"   {name}: p50 {figures[name]['p50']:.1f} ms, p99 {figures[name]['p99']:.1f} ms, {sorted(statuses)}")
    return figures


def ratio(ours: float, base: float) -> str:
    return f"{ours / base:.2f}" if base else "n/a"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))]


# --- main ----------------------------------------------------------------------------------------------------


def main() -> None:  # noqa: C901, PLR0915 - one linear script, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8108)
    parser.add_argument("--baseline-port", type=int, default=8109)
    parser.add_argument("--database", default="itirp_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--web", default="gthread:2x4", help="sync:N or gthread:NxT (gunicorn.conf.py's)")
    parser.add_argument(
        "--compare-web",
        default="gthread:2x8,sync:2,sync:4",
        help="comma-separated other --web values, measured at 8 connections",
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk / pgbench run")
    parser.add_argument("--exec-orders", type=int, default=300)
    parser.add_argument("--seed-budget", type=int, default=600, help="seconds allowed for seeding towards 10M")
    parser.add_argument("--skip-events", action="store_true", help="skip the 1M/10M event-store part")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--orders-only",
        action="store_true",
        help="a quick look while working: only POST /orders at 8 connections, printed, no report written",
    )
    parser.add_argument(
        "--before",
        default=BEFORE,
        help="a commit whose web server is measured in the same run (8 and 64 connections), for before/after;"
        " '' to skip",
    )
    parser.add_argument("--hold", type=int, default=0, help="with --orders-only: keep the servers up N s (profiling)")
    args = parser.parse_args()

    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    var = Path(tempfile.mkdtemp(prefix="itirp-bench-h8-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{args.database}",
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
        "DJANGO_SETTINGS_MODULE": "itirp.settings",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("ITIRP_BENCH_BASELINE", None)
    os.environ.update(env)
    (var / "metrics").mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "cores": os.cpu_count(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "dirty": bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--", "orders", "risk", "audit", "accounts", "itirp"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            ).stdout.strip()
        ),
        "argv": shlex.join(sys.argv[1:]),
    }
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    report["cpu"] = model or platform.machine()
    log(f"{report['uptime_before']}; {report['cores']} cores ({report['cpu']})")

    log(f"recreating database {args.database} and migrating")
    recreate_database(args.database)
    subprocess.run([str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    from django.db import connection

    from accounts import services as account_services
    from risk import services as risk_services

    trader = account_services.user_create(actor=None, username="bench-trader", password="bench-pass-1", role="TRADER")
    risk = account_services.user_create(actor=None, username="bench-risk", password="bench-pass-2", role="RISK_MANAGER")
    account_services.user_create(actor=None, username="bench-compliance", password="bench-pass-3", role="COMPLIANCE")
    risk_services.risk_limits_update(actor=risk, reason="benchmark", **{k: Decimal(v) for k, v in RAISED.items()})
    statements, pgbench_script = capture_submission_sql(trader)
    report["sql"] = statements
    report["pgbench_script"] = pgbench_script
    log(f"one submission = {len(statements)} SQL statements")
    connection.close()
    _redis_flush(args.redis)

    base = f"http://127.0.0.1:{args.port}"
    web_cmd, web_desc = web_command(args.web, args.port)
    report["web"] = web_desc
    web_log, worker_log, beat_log = var / "web.log", var / "worker.log", var / "beat.log"
    web = spawn(web_cmd, {**env, "ITIRP_PROCESS": "web"}, web_log)
    worker_cmd = [str(BIN / "celery"), "-A", "itirp", "--quiet", "worker", "--loglevel", "INFO", "--concurrency", "2"]
    worker_cmd += ["--pool", "prefork", "--without-gossip", "--without-mingle", "--hostname", "bench-h8@%h"]
    worker = spawn(worker_cmd, {**env, "ITIRP_PROCESS": "worker"}, worker_log)
    beat_cmd = [str(BIN / "celery"), "-A", "itirp", "--quiet", "beat", "--loglevel", "INFO"]
    beat_cmd += ["--schedule", str(var / "celerybeat-schedule")]
    beat = spawn(beat_cmd, {**env, "ITIRP_PROCESS": "beat"}, beat_log)
    report["topology"] = [shlex.join(web_cmd), shlex.join(worker_cmd), shlex.join(beat_cmd)]
    wait_http(f"{base}/", web, web_log)
    wait_log("ready", worker, worker_log)

    status, tokens = http("POST", f"{base}/api/v1/auth/login", {"username": "bench-trader", "password": "bench-pass-1"})
    assert status == 200, tokens
    token = tokens["access_token"]
    log(f"warm-up {WARM_UP_S} s")
    run_wrk(f"{base}/api/v1/orders", token, connections=8, duration=WARM_UP_S, run="warm")
    if args.orders_only:
        if args.hold:
            log(f"holding the servers {args.hold} s (web pid {web.pid}); token in {var / 'token'}")
            (var / "token").write_text(token)
            time.sleep(args.hold)
        run_wrk(f"{base}/api/v1/orders", token, connections=8, duration=args.duration, run="quick")
        return
    report["load_orders"] = load()
    report["orders"] = [
        run_wrk(f"{base}/api/v1/orders", token, connections=c, duration=args.duration, run=f"c{c}") for c in LEVELS
    ]
    stop(web)

    report["compare_web"] = []
    for server in [s for s in args.compare_web.split(",") if s]:
        cmd, desc = web_command(server, args.port)
        proc = spawn(cmd, {**env, "ITIRP_PROCESS": "web"}, var / f"web-{server.replace(':', '-')}.log")
        wait_http(f"{base}/", proc, var / f"web-{server.replace(':', '-')}.log")
        run_wrk(f"{base}/api/v1/orders", token, connections=8, duration=3, run=f"warm-{server}")
        figures = run_wrk(f"{base}/api/v1/orders", token, connections=8, duration=args.duration, run=server)
        report["compare_web"].append((desc, figures))
        stop(proc)

    report["before"] = measure_before(args.before, args.web, args.port, env, var, token) if args.before else None

    stop(beat)
    stop(worker)

    log("baseline: the bare view without the database")
    baseline_cmd, _ = web_command(args.web, args.baseline_port)
    baseline_log = var / "baseline.log"
    baseline = spawn(baseline_cmd, {**env, "ITIRP_PROCESS": "web", "ITIRP_BENCH_BASELINE": "1"}, baseline_log)
    wait_http(f"http://127.0.0.1:{args.baseline_port}/", baseline, baseline_log)
    url = f"http://127.0.0.1:{args.baseline_port}/api/v1/bench/baseline"
    run_wrk(url, "", connections=8, duration=3, run="bwarm")
    report["baseline"] = [run_wrk(url, "", connections=c, duration=args.duration, run=f"b{c}") for c in LEVELS]
    url = f"http://127.0.0.1:{args.baseline_port}/api/v1/bench/guarded"
    run_wrk(url, token, connections=8, duration=3, run="gwarm")
    report["guarded"] = [run_wrk(url, token, connections=c, duration=args.duration, run=f"g{c}") for c in LEVELS]
    stop(baseline)

    log("baseline: pgbench running one submission's SQL")
    report["pgbench"] = [run_pgbench(args.database, pgbench_script, c, args.duration) for c in LEVELS]

    log("in-process: the risk decision (bench_orders.time_in_process)")
    import bench_orders

    report["inproc"] = bench_orders.time_in_process(trader, 300)
    connection.close()

    log("execution throughput: 2 workers, venue latency 0 (bench_execution helpers)")
    try:
        report["execution"] = execution_throughput(args.exec_orders, args.redis)
    except (SystemExit, Exception) as exc:  # noqa: BLE001 - reported, and the rest of the run goes on
        log(f"execution phase failed: {exc}")
        report["execution"] = {"error": str(exc)}

    log("event appends per second (bench_audit.py)")
    cmd = [str(BIN / "python"), "bench/bench_audit.py", "--writers", "4", "--seconds", "10", "--rounds", "1"]
    audit_env = {**env, "LOG_LEVEL": "ERROR"}
    done = subprocess.run(cmd, cwd=ROOT, env=audit_env, capture_output=True, text=True)
    report["audit"] = {"command": shlex.join(cmd), "output": (done.stdout + done.stderr).strip()}
    log(report["audit"]["output"])

    report["events"] = []
    if not args.skip_events:
        compliance = http_login_inproc("bench-compliance", "bench-pass-3")
        for target, budget in ((1_000_000, 3600), (10_000_000, args.seed_budget)):
            count, seconds = seed_to(target, budget, env)
            log(f"event table: {count:,} rows (seeding took {seconds:.0f} s); timing queries")
            report["events"].append(
                {"target": target, "count": count, "seed_s": seconds, "queries": time_queries(compliance, 200)}
            )
            if count < target:
                break

    report["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    stop_all()
    text = render(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    log(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


def _redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def http_login_inproc(username: str, password: str) -> str:
    from django.test import Client

    response = Client(HTTP_HOST="127.0.0.1").post(
        "/api/v1/auth/login", {"username": username, "password": password}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def execution_throughput(orders: int, redis_url: str) -> dict[str, Any]:
    """bench_execution.py's phase 1: a queue of N approved orders drained by 2 workers (concurrency 1 each,
    simulated venue with latency 0 and success 100 %); rate = completions after both were ready / time."""
    import bench_execution as be
    from django.db.models import Count, Max
    from django.utils import timezone

    from audit.models import Event, EventType

    _redis_flush(redis_url)
    be.breaker_reset()
    trader = be.user()
    tag = dt.datetime.now(dt.UTC).strftime("%H%M%S")
    queued = be.submit(trader, orders, f"exec-{tag}")
    with be.celery_worker(name="bench-h8-a", **be.VENUE), be.celery_worker(name="bench-h8-b", **be.VENUE):
        ready = timezone.now()
        be.wait_executed(queued, timeout=max(120, orders))
        done = Event.objects.filter(
            order_id__in=queued, event_type=EventType.EXECUTION_COMPLETED, timestamp__gte=ready
        ).aggregate(n=Count("pk"), last=Max("timestamp"))
    seconds = (done["last"] - ready).total_seconds()
    figures = {"orders": orders, "drained": done["n"], "seconds": seconds, "rate": done["n"] / seconds}
    log(f"   {figures['rate']:.1f} executed orders/s ({done['n']} in {seconds:.2f} s)")
    return figures


# --- report --------------------------------------------------------------------------------------------------


def render(r: dict[str, Any]) -> str:  # noqa: PLR0915
    ms = lambda us: f"{us / 1000:.1f}"  # noqa: E731
    lines = [
        "# ITIRP benchmark (`make bench`)",
        "",
        f"Run {r['started']} at commit {r['commit']}"
        + (" (with uncommitted changes in the app)" if r["dirty"] else "")
        + f", {r['cores']} cores ({r['cpu']}); PostgreSQL with fsync on, Redis, all on 127.0.0.1.",
        "",
        "```",
        f"make bench   # = .venv/bin/python bench/run_bench.py {r['argv']}".rstrip(),
        "```",
        "",
        f"Machine load: before `{r['uptime_before']}`; during the submission runs load {r['load_orders']};"
        f" after `{r['uptime_after']}`. The machine is shared with other engineers' test runs: figures are what"
        " this run got, not the machine's best.",
        "",
        f"Topology: web = {r['web']} (gunicorn.conf.py, DEBUG off, LOG_LEVEL INFO to a file), a Celery worker"
        " (prefork, concurrency 2, default simulated venue: 100 ms, 90 % success) and beat, database `itirp_bench`"
        " (recreated), Redis db 8. Commands:",
        "",
        *[f"- `{c}`" for c in r["topology"]],
        "",
        "## POST /api/v1/orders (wrk, every order unique, 2 threads)",
        "",
        "| connections | orders/s (200) | p50 ms | p99 ms | max ms | non-200 | socket errors | vs bare view"
        " | vs guarded view | vs pgbench |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o, b, g, p in zip(r["orders"], r["baseline"], r["guarded"], r["pgbench"], strict=True):
        lines.append(
            f"| {o['connections']} | **{o['rps']:.0f}** | {ms(o['p50_us'])} | {ms(o['p99_us'])} | {ms(o['max_us'])} |"
            f" {o['non200']} | {o['errors']} | {ratio(o['rps'], b['rps'])} of {b['rps']:.0f} |"
            f" {ratio(o['rps'], g['rps'])} of {g['rps']:.0f} | {ratio(o['rps'], p['tps'])} of {p['tps']:.0f} |"
        )
    lines += [
        "",
        "Baselines:",
        "",
        "| what | connections | per s | p50 ms | p99 ms | max ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in r["baseline"]:
        lines.append(
            f"| bare DRF view, no database (POST /api/v1/bench/baseline) | {b['connections']} | {b['rps']:.0f} |"
            f" {ms(b['p50_us'])} | {ms(b['p99_us'])} | {ms(b['max_us'])} | {b['non200'] + b['errors']} |"
        )
    for g in r["guarded"]:
        lines.append(
            f"| guarded view: POST /orders without the decision (JWT + its query, permission, throttle, validation;"
            f" POST /api/v1/bench/guarded) | {g['connections']} | {g['rps']:.0f} |"
            f" {ms(g['p50_us'])} | {ms(g['p99_us'])} | {ms(g['max_us'])} | {g['non200'] + g['errors']} |"
        )
    for p in r["pgbench"]:
        lines.append(
            f"| pgbench, one submission's SQL per transaction | {p['clients']} | {p['tps']:.0f} |"
            f" avg {p['latency_ms']:.2f} | | | {p['failed']} failed |"
        )
    if r["compare_web"]:
        lines += [
            "",
            "Web servers compared (same run, 8 connections):",
            "",
            "| server | orders/s | p50 ms | p99 ms | non-200 |",
            "|---|---|---|---|---|",
        ]
        first = r["orders"][0]
        lines.append(
            f"| {r['web']} (the one above) | {first['rps']:.0f} | {ms(first['p50_us'])} | {ms(first['p99_us'])} | {first['non200']} |"
        )
        for desc, f in r["compare_web"]:
            lines.append(f"| {desc} | {f['rps']:.0f} | {ms(f['p50_us'])} | {ms(f['p99_us'])} | {f['non200']} |")
    if r.get("before"):
        b = r["before"]
        after = {o["connections"]: o for o in r["orders"]}
        lines += [
            "",
            f"Before and after, same run: the web server of commit {b['rev']} (one transaction per order under the"
            f" risk lock, DRF's throttle), {b['web']}, against the same database and worker, 10 s per level:",
            "",
            "| connections | before: orders/s | p50 ms | p99 ms | after: orders/s | p50 ms | p99 ms | speed-up |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in b["figures"]:
            a = after.get(f["connections"])
            if a is None:
                continue
            lines.append(
                f"| {f['connections']} | {f['rps']:.0f} | {ms(f['p50_us'])} | {ms(f['p99_us'])} | **{a['rps']:.0f}** |"
                f" {ms(a['p50_us'])} | {ms(a['p99_us'])} | {ratio(a['rps'], f['rps'])}x |"
            )
    lines += ["", "wrk / pgbench command lines:", ""]
    lines += [f"- `{x['command']}`" for x in [*r["orders"], *r["baseline"], *r["guarded"], *r["pgbench"]]]
    i = r["inproc"]
    e = r["execution"]
    if "error" in e:
        execution = f"| execution: 2 workers, venue latency 0 | failed in this run: {e['error']} |"
    else:
        execution = (
            f"| execution: queue of {e['orders']} drained by 2 workers, venue latency 0 |"
            f" **{e['rate']:.1f} executed orders/s** ({e['drained']} in {e['seconds']:.2f} s) |"
        )
    lines += [
        "",
        "## In-process and back-end figures",
        "",
        "| measure | value |",
        "|---|---|",
        f"| risk decision, pure `check_order` ({i['books']} symbol books, 20,000 calls) | p50 {i['pure_p50_us']:.1f} µs,"
        f" p99 {i['pure_p99_us']:.1f} µs |",
        f"| locked service path `order_submit` in one process ({i['service_n']} orders) | p50 {i['service_p50_ms']:.2f} ms,"
        f" p99 {i['service_p99_ms']:.2f} ms |",
        execution,
        "",
        f"Event appends (`{r['audit']['command']}`, 3 events per transaction like a submission):",
        "",
        "```",
        r["audit"]["output"],
        "```",
        "",
        "## Event store queries (API through Django's test client, compliance token)",
        "",
    ]
    if not r["events"]:
        lines.append("Not run (--skip-events).")
    for ev in r["events"]:
        lines += [
            f"Target {ev['target']:,} events: the table held **{ev['count']:,}** rows"
            f" (seeding this step took {ev['seed_s']:.0f} s"
            + (", stopped by the time budget" if ev["count"] < ev["target"] else "")
            + ").",
            "",
            "| query | n | p50 ms | p99 ms | max ms | statuses |",
            "|---|---|---|---|---|---|",
        ]
        for name, q in ev["queries"].items():
            lines.append(f"| {name} | {q['n']} | {q['p50']:.1f} | {q['p99']:.1f} | {q['max']:.1f} | {q['statuses']} |")
        lines.append("")
    lines += [
        "## One submission's SQL (captured from Django's query log)",
        "",
        "```sql",
        *[s if len(s) < 400 else s[:400] + " ..." for s in r["sql"]],
        "```",
        "",
        "pgbench script (ids made unique per transaction):",
        "",
        "```sql",
        *[s if len(s) < 400 else s[:400] + " ..." for s in r["pgbench_script"].splitlines()],
        "```",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
