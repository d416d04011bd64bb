"""The database side of the benchmark: its database, one submission's SQL as a pgbench script, event
seeding and queries, execution throughput (run in the bench process, Django set up)."""

# ruff: noqa: S603 - a local script: our own commands

from __future__ import annotations

import datetime as dt
import re
import shlex
import subprocess
import time
import uuid
from decimal import Decimal
from typing import Any

from percentiles import percentile
from servers import BIN, ROOT, log

PG = "postgres://postgres@127.0.0.1:5432"


def recreate_database(name: str) -> None:
    import psycopg

    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name}: the benchmark only recreates databases named *bench*")
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


UUID_RE = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b")
# An array parameter as psycopg's mogrify writes it ('{a,b}'::uuid[], '{x}'::varchar(64)[]), elements without
# quotes or escapes: the bulk inserts' columns (core.sql) and the look-ups' ANY(%s).
ARRAY_RE = re.compile(r"'\{([^}'\"\\]*)\}'(::[a-z]+(?:\(\d+(?:, ?\d+)?\))?\[\])")
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
    return statements, pgbench_script(statements, cid)


def pgbench_script(statements: list[str], cid: str) -> str:
    """A pgbench script of one submission's statements (as Django's query log writes them) in which every
    UUID, the execution key and the client order id `cid` are made unique per transaction, also inside the
    array parameters of the bulk inserts."""
    names: dict[str, str] = {}

    def fresh(raw: str) -> str:
        var = names.setdefault(raw.replace("-", ""), f"u{len(names)}")
        return f"md5(:client_id::text || '-' || :seed::text || '-{var}')::uuid"

    hex64 = "(md5(:client_id::text || '-' || :seed::text) || md5(:seed::text))"
    client_order = "('pg-' || :client_id::text || '-' || :seed::text)"

    def element(item: str) -> str:
        if item == "NULL":
            return item
        if UUID_RE.fullmatch(item):
            return fresh(item)
        if re.fullmatch(r"[0-9a-f]{64}", item):
            return hex64
        return client_order if item == cid else f"'{item}'"

    def array_sub(match: re.Match[str]) -> str:
        items = match.group(1).split(",") if match.group(1) else []
        if not any(UUID_RE.fullmatch(i) or re.fullmatch(r"[0-9a-f]{64}", i) or i == cid for i in items):
            return match.group(0)  # nothing per transaction in it: the literal stays as it is
        return f"ARRAY[{', '.join(element(item) for item in items)}]{match.group(2)}"

    def quoted_uuid(match: re.Match[str]) -> str:
        return fresh(match.group(1))

    script = ["\\set seed random(1, 1000000000000)"]
    for sql in statements:
        body = sql.strip().rstrip(";")
        if body.upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            continue
        body = HEX64_RE.sub(hex64, body)
        body = ARRAY_RE.sub(array_sub, body)
        body = re.sub(r"'(" + UUID_RE.pattern + r")'", quoted_uuid, body)
        body = body.replace(f"'{cid}'", client_order)
        script.append(body + ";")
    return "\n".join(line.replace("\n", " ") for line in script) + "\n"


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


def redis_flush(url: str) -> None:
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
    """bench_execution.py's phase 1: a queue of N approved orders, committed in one transaction once 2 workers
    (concurrency 1 each, simulated venue with latency 0 and success 100 %) are ready, drained by them; rate =
    completions after the commit / time."""
    import bench_execution as be
    from django.db.models import Count, Max

    from audit.models import Event, EventType
    from orders.models import Order, OrderStatus

    # pgbench's baseline ran one submission's SQL thousands of times and left those rows APPROVED with no
    # message for them: a worker's group takes never-started orders oldest first, so it would execute them
    # before this phase's own and the rate would read near zero. They are set aside (this database only).
    set_aside = Order.objects.filter(status=OrderStatus.APPROVED, client_order_id__startswith="pg-").update(
        status=OrderStatus.CANCELLED
    )
    if set_aside:
        log(f"   {set_aside:,} orders pgbench left APPROVED set aside (CANCELLED) before the phase")
    redis_flush(redis_url)
    be.breaker_reset()
    trader = be.user()
    tag = dt.datetime.now(dt.UTC).strftime("%H%M%S")
    with be.celery_worker(name="bench-h8-a", **be.VENUE), be.celery_worker(name="bench-h8-b", **be.VENUE):
        # Both workers are up before the queue exists (its messages go out when the one transaction commits):
        # filled beforehand, the first worker drained it while the second was starting, and no completion
        # fell after "ready".
        queued, ready = be.submit_held(trader, orders, f"exec-{tag}")
        be.wait_executed(queued, timeout=max(120, orders))
        done = Event.objects.filter(
            order_id__in=queued, event_type=EventType.EXECUTION_COMPLETED, timestamp__gte=ready
        ).aggregate(n=Count("pk"), last=Max("timestamp"))
    seconds = (done["last"] - ready).total_seconds()
    figures = {"orders": orders, "drained": done["n"], "seconds": seconds, "rate": done["n"] / seconds}
    log(f"   {figures['rate']:.1f} executed orders/s ({done['n']} in {seconds:.2f} s)")
    return figures


# The load's books: 5 desks of 4 books, each book granted to 2 of 4 traders (each trader 10 books over all
# the desks), so POST /orders spreads over 20 books, 5 desks and 4 traders' scopes.
BENCH_DESKS = 5
BOOKS_PER_DESK = 4
BENCH_TRADERS = ("bench-trader", "bench-trader2", "bench-trader3", "bench-trader4")
TRADER_PASSWORD = "bench-pass-1"


def seed_books(first_trader: Any) -> dict[str, list[str]]:
    """Create the bench's desks, books and traders (first_trader is bench-trader, already made) and grant
    them; answers each trader's username with the books it may trade."""
    from guardian.shortcuts import assign_perm

    from accounts import services as account_services
    from books.models import Book, Desk

    traders = [first_trader] + [
        account_services.user_create(actor=None, username=name, password=TRADER_PASSWORD, role="TRADER")
        for name in BENCH_TRADERS[1:]
    ]
    granted: dict[str, list[str]] = {t.username: [] for t in traders}
    for d in range(1, BENCH_DESKS + 1):
        desk = Desk.objects.create(code=f"BD{d}", name=f"Bench desk {d}")
        for b in range(1, BOOKS_PER_DESK + 1):
            index = (d - 1) * BOOKS_PER_DESK + b - 1
            book = Book.objects.create(code=f"BD{d}-B{b}", name=f"Bench book {d}.{b}", desk=desk, currency="USD")
            for trader in (traders[index % len(traders)], traders[(index + 1) % len(traders)]):
                assign_perm("books.trade_book", trader, book)
                assign_perm("books.view_book", trader, book)
                granted[trader.username].append(book.code)
    log(f"books: {BENCH_DESKS} desks, {BENCH_DESKS * BOOKS_PER_DESK} books, {len(traders)} traders granted")
    return granted


BENCH_SYMBOLS = [f"SYM{i}" for i in range(50)]


def seed_instruments(*, fed: bool = True) -> None:
    """The 50 instruments bench orders trade (SYM0..SYM49, equities around 100), priced once; the feed moves
    them during the measured runs. Not `fed` (--feed-rate 0): their one price never goes stale during the run,
    as for the earlier commit (BEFORE_SETUP); with the default 60 s every order after the first minute was
    refused STALE_MARKET_DATA and the later runs measured refusals."""
    from market import prices
    from market.models import Instrument

    Instrument.objects.bulk_create(
        [
            Instrument(
                symbol=symbol,
                name=f"Bench instrument {symbol}",
                asset_class="EQUITY",
                currency="USD",
                tick_size=Decimal("0.01"),
                lot_size=Decimal(1),
                initial_price=Decimal(100),
                volatility=Decimal("0.25"),
                **({} if fed else {"staleness_seconds": 86400}),
            )
            for symbol in BENCH_SYMBOLS
        ]
    )
    now = dt.datetime.now(dt.UTC)
    prices.record(prices.Quote(symbol, Decimal(100), now, "bench") for symbol in BENCH_SYMBOLS)
    log(f"instruments: {len(BENCH_SYMBOLS)} listed and priced at 100")
