"""Benchmark (a script, not a test): what GET /api/v1/metrics's counts cost on a large event table.

Compares core.system_counts() - cold (no cached mark: one full pass) and warm (counts only past
the mark) - with the straightforward COUNT(*) + GROUP BY it replaced. Prints figures; asserts nothing.

    createdb -h 127.0.0.1 -U postgres itirp_h7_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itirp_h7_bench REDIS_URL=redis://127.0.0.1:6379/7 \\
      .venv/bin/python manage.py migrate -v0
    DATABASE_URL=... REDIS_URL=... .venv/bin/python tests/observability/bench_counts.py 1000000
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402

from audit.models import Event  # noqa: E402
from itirp.counts import system_counts  # noqa: E402
from orders.models import Order  # noqa: E402

TYPES = ["ORDER_CREATED", "RISK_CHECK_STARTED", "RISK_CHECK_PASSED", "EXECUTION_STARTED", "EXECUTION_COMPLETED"]


def fill(target: int) -> None:
    have = Event.objects.count()
    if have >= target:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Event._meta.db_table}
                  (event_id, event_type, correlation_id, symbol, actor_username, timestamp, payload)
                SELECT gen_random_uuid(), (ARRAY{TYPES!r})[1 + i %% 5], gen_random_uuid(), 'AAPL', 'bench',
                       now() - interval '1 hour', '{{}}'::jsonb
                FROM generate_series(1, %s) AS i""",  # noqa: S608 - constants only
            [target - have],
        )
        cursor.execute(f"ANALYZE {Event._meta.db_table}")


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def straightforward() -> None:
    Event.objects.count()
    dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by())


def cold() -> None:
    cache.delete("itirp:metrics:event-counts:v1")
    system_counts()


def main() -> None:
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    fill(target)
    print(f"events: {Event.objects.count():,}  (PostgreSQL {connection.pg_version})")
    for name, fn, repeat in (
        ("COUNT(*) + GROUP BY (replaced)", straightforward, 5),
        ("system_counts cold (full pass)", cold, 5),
        ("system_counts warm (past mark)", system_counts, 50),
    ):
        fn()  # warm the caches of the database
        times = timed(fn, repeat)
        print(f"{name:34s} median {statistics.median(times):9.2f} ms   max {max(times):9.2f} ms   (n={repeat})")


if __name__ == "__main__":
    main()
