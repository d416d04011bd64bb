"""Times the compliance back office on a large event table: list, filtered list, searches, trails, export.

Run against a benchmark database filled by `manage.py seed_events` (1,000,000 events by default):

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/itirp_h5_bench SECRET_KEY=bench-only-key
    .venv/bin/python manage.py migrate && .venv/bin/python manage.py seed_events
    .venv/bin/python bench/bench_admin.py [--runs 20] [--out bench/results/admin.md]

Each page is fetched through Django's test Client (the whole request path: middleware, admin, templates,
queries) signed in as a compliance user; the figures are wall-clock milliseconds per request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "admin.md"))
    parser.add_argument("--full-export", action="store_true", help="also time a CSV export of the whole table")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts import services
    from accounts.models import User
    from audit.admin import table_estimate
    from audit.models import Event

    if "bench" not in str(connection.settings_dict["NAME"]):
        sys.exit("bench_admin.py runs against a benchmark database (DATABASE_URL name containing 'bench')")
    user = User.objects.filter(username="bench_compliance").first() or services.user_create(
        actor=None, username="bench_compliance", password="bench-Compliance-1", role="COMPLIANCE"
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)

    sample = Event.objects.filter(event_type="EXECUTION_COMPLETED").order_by("-sequence")[5000]
    newest = Event.objects.order_by("-sequence").first()
    old_day = sample.timestamp
    pages = [
        ("event list, newest first", "/admin/audit/event/"),
        ("event list, page 20", "/admin/audit/event/?p=20"),
        ("filtered: event type + symbol", f"/admin/audit/event/?event_type__exact=EXECUTION_COMPLETED&symbol={sample.symbol}"),
        ("filtered: user", f"/admin/audit/event/?user={sample.actor_username}"),
        ("filtered: one day (date hierarchy)",
         f"/admin/audit/event/?timestamp__year={old_day.year}&timestamp__month={old_day.month}&timestamp__day={old_day.day}"),
        ("date hierarchy: one month", f"/admin/audit/event/?timestamp__year={old_day.year}&timestamp__month={old_day.month}"),
        ("search: order id (exact)", f"/admin/audit/event/?q={sample.order_id}"),
        ("search: correlation id (exact)", f"/admin/audit/event/?q={newest.correlation_id}"),
        ("trail: order", f"/admin/audit/event/trail/?order_id={sample.order_id}"),
        ("trail: correlation id", f"/admin/audit/event/trail/?correlation_id={sample.correlation_id}"),
        ("event detail", f"/admin/audit/event/{sample.pk}/change/"),
        ("export CSV: one order's trail", f"/admin/audit/event/export/?format=csv&q={sample.order_id}"),
    ]  # fmt: skip

    results = []
    for label, url in pages:
        timings, queries = [], 0
        for i in range(args.runs + 1):
            reset_queries()
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url, secure=True)  # as behind TLS in production
                if response.streaming:
                    b"".join(response.streaming_content)
                elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (url, response.status_code)
            if i:  # the first request warms caches and connections
                timings.append(elapsed)
                queries = len(captured)
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))]
        results.append((label, url, statistics.median(timings), p95, timings[-1], queries))
        print(f"{label:40s} median {statistics.median(timings):7.1f} ms  p95 {p95:7.1f} ms  queries {queries}")

    def sql_ms(sql: str) -> str:
        runs = []
        with connection.cursor() as cursor:
            for _ in range(3):
                started = time.perf_counter()
                cursor.execute(sql)
                cursor.fetchall()
                runs.append((time.perf_counter() - started) * 1000)
        return f"{min(runs):.0f}-{max(runs):.0f} ms"

    count_ms = sql_ms("SELECT count(*) FROM audit_event")
    distinct_ms = sql_ms(
        "SELECT DISTINCT date_trunc('day', timestamp) FROM audit_event WHERE timestamp >= now() - interval '30 days'"
    )

    def export(query: str) -> tuple[int, float, float, float]:
        started = time.perf_counter()
        response = client.get(f"/admin/audit/event/export/?{query}", secure=True)
        first, size = None, 0
        for chunk in response.streaming_content:
            first = first if first is not None else time.perf_counter() - started
            size += len(chunk)
        return int(response["X-Export-Rows"]), time.perf_counter() - started, first or 0.0, size / 1e6

    day = f"timestamp__year={old_day.year}&timestamp__month={old_day.month}&timestamp__day={old_day.day}"
    exports = [("one day, CSV", export(f"format=csv&{day}")), ("one day, JSON lines", export(f"format=jsonl&{day}"))]
    if args.full_export:
        exports.append(("whole table, CSV", export("format=csv")))
    for label, (rows, total, _first, mb) in exports:
        print(f"export {label}: {rows:,} rows in {total:.1f} s ({rows / total:,.0f} rows/s, {mb:.0f} MB)")

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
    estimate = table_estimate(Event)
    exact = Event.objects.count()
    lines = [
        "# Back office (admin) on a large event table",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bench/bench_admin.py {' '.join(sys.argv[1:])}`",
        f"on {exact:,} events (pg_class estimate {estimate:,}) in {version}, on the 2-core development machine",
        f"while other work ran on it (load average {os.getloadavg()[0]:.1f} at the end); Django test Client",
        "signed in as a compliance user (whole request path, requests as HTTPS,",
        "no network). Milliseconds per request; the first request of each page is not counted.",
        "",
        "Seeded with `manage.py seed_events` (order flows of 3-5 events, 5% logins, 48 symbols, 20 traders,",
        "30 days).",
        "",
        "| page | median ms | p95 ms | max ms | queries |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {label} | {med:.1f} | {p95:.1f} | {mx:.1f} | {q} |" for label, _, med, p95, mx, q in results]
    lines += [
        "",
        "How the list stays fast: no COUNT(*) over the table (the paginator counts at most 10,001 rows of a",
        "filtered selection, and estimates the whole table from pg_class.reltuples); show_full_result_count",
        "is off; the date drill-down is built from MIN/MAX(timestamp) and the calendar instead of SELECT",
        "DISTINCT over the period; ordering is (-timestamp, -sequence), which the (x, timestamp) indexes serve;",
        "columns are not sortable; search is an exact match on indexed UUID columns; filters are exact text",
        "boxes, never SELECT DISTINCT lists.",
        "",
        f"For comparison, on the same database (3 runs): `SELECT count(*) FROM audit_event` takes {count_ms}",  # noqa: S608 - text
        "(it grows with the table; Django's default admin runs a count like it twice per page), and the default",
        f"date drill-down's `SELECT DISTINCT date_trunc('day', timestamp)` over 30 days takes {distinct_ms}.",
        "",
        "Exports (streamed; the first bytes wait for the exact row count recorded in AUDIT_EXPORTED; rows are",
        "read through a server-side cursor in chunks of 2,000, so memory stays flat):",
        "",
        "| export | rows | seconds | rows/s | first bytes s | MB |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {label} | {rows:,} | {total:.1f} | {rows / total:,.0f} | {first:.2f} | {mb:.0f} |"
            for label, (rows, total, first, mb) in exports
        ],
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
