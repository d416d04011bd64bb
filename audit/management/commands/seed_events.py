"""Fill a benchmark database with N realistic events (order flows, logins, limit changes), fast (COPY).

Only for a benchmark database: it refuses a database whose name does not contain "bench" unless told
otherwise, because fake events in a real, append-only audit trail could never be taken out again.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from accounts import services
from accounts.models import User
from audit.integrity import EVENT_FIELDS
from audit.models import Event

SYMBOLS = [f"SYM{i:03d}" for i in range(40)] + ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA", "META", "IBM"]
# Every stored field but the sequence, which the database assigns: the fields the seals cover.
COLUMNS = tuple(f for f in EVENT_FIELDS if f != "sequence")


class Command(BaseCommand):
    help = "Bulk-insert N synthetic events into a benchmark database (default 1,000,000)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, default=1_000_000)
        parser.add_argument("--days", type=int, default=30, help="spread the events over the last N days")
        parser.add_argument("--traders", type=int, default=20)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--batch", type=int, default=5000, help="rows per bulk_create batch (not PostgreSQL)")
        parser.add_argument(
            "--allow-any-database",
            action="store_true",
            help="seed even though the database name does not contain 'bench' (tests)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = str(connection.settings_dict["NAME"])
        if "bench" not in name and not options["allow_any_database"]:
            raise CommandError(
                f"Refusing to seed {name!r}: seed_events is for a benchmark database (name with 'bench')."
            )
        rng = random.Random(options["seed"])
        actors = self._traders(options["traders"])
        started = time.monotonic()
        rows = self._rows(rng, count=options["count"], days=options["days"], actors=actors)
        if connection.vendor == "postgresql":
            written = self._copy(rows)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE audit_event")
        else:
            written = self._bulk(rows, options["batch"])
        elapsed = time.monotonic() - started
        self.stdout.write(f"seeded {written:,} events in {elapsed:.1f} s ({written / max(elapsed, 1e-9):,.0f}/s)")

    def _traders(self, n: int) -> list[tuple[int, str]]:
        actors = []
        for i in range(1, n + 1):
            username = f"bench_trader{i:02d}"
            user = User.objects.filter(username=username).first() or services.user_create(
                actor=None, username=username, password=uuid.uuid4().hex, role="TRADER"
            )
            actors.append((user.pk, username))
        return actors

    def _rows(self, rng: random.Random, *, count: int, days: int, actors: list[tuple[int, str]]) -> Any:
        """Order flows in time order (sequence grows with time, as in production), with some logins."""
        now = timezone.now()
        start = now - dt.timedelta(days=days)
        step = (now - start).total_seconds() / max(count / 4.6, 1)
        t = start
        made = 0
        while made < count:
            t += dt.timedelta(seconds=rng.expovariate(1 / step))
            actor_id, username = rng.choice(actors)
            correlation = uuid.uuid4()
            address = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            if rng.random() < 0.05:
                event_type = "LOGIN_SUCCEEDED" if rng.random() < 0.9 else "LOGIN_FAILED"
                yield (uuid.uuid4(), event_type, correlation, None, None, "", actor_id, username, address, t, "{}")
                made += 1
                continue
            order = uuid.uuid4()
            symbol = rng.choice(SYMBOLS)
            side = rng.choice(["BUY", "SELL"])
            qty = Decimal(rng.randint(1, 500))
            price = Decimal(rng.randint(1000, 50000)) / 100
            created = json.dumps(
                {"symbol": symbol, "side": side, "quantity": str(qty), "price": str(price), "user_id": username}
            )
            flow = [("ORDER_CREATED", created), ("RISK_CHECK_STARTED", '{"checks": ["KILL_SWITCH"]}')]
            if rng.random() < 0.9:
                flow.append(("RISK_CHECK_PASSED", '{"message": "Order approved - all pre-trade risk checks passed"}'))
                flow.append(("EXECUTION_STARTED", "{}"))
                flow.append(("EXECUTION_COMPLETED", json.dumps({"fill_price": str(price), "venue": "SIM"})))
            else:
                flow.append(("RISK_CHECK_FAILED", '{"violations": ["POSITION_LIMIT"]}'))
            previous = None
            ts = t
            for event_type, payload in flow:
                event_id = uuid.uuid4()
                yield (
                    event_id,
                    event_type,
                    correlation,
                    previous,
                    order,
                    symbol,
                    actor_id,
                    username,
                    address,
                    ts,
                    payload,
                )
                previous = event_id
                if event_type == "RISK_CHECK_PASSED":
                    ts += dt.timedelta(milliseconds=rng.uniform(2, 40))
                elif event_type == "EXECUTION_STARTED":
                    ts += dt.timedelta(milliseconds=rng.uniform(50, 400))
                made += 1
                if made >= count:
                    return

    def _copy(self, rows: Any) -> int:
        written = 0
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg 3 cursor under Django's wrapper
            sql = f"COPY {Event._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN"
            with raw.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
                    written += 1
        return written

    def _bulk(self, rows: Any, batch: int) -> int:
        written, chunk = 0, []
        for row in rows:
            values = dict(zip(COLUMNS, row, strict=True))
            values["payload"] = json.loads(values["payload"])
            chunk.append(Event(**values))
            if len(chunk) >= batch:
                with transaction.atomic():
                    Event.objects.bulk_create(chunk)
                written, chunk = written + len(chunk), []
        if chunk:
            with transaction.atomic():
                Event.objects.bulk_create(chunk)
            written += len(chunk)
        return written
