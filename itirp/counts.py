"""GET /api/v1/metrics's counts (total_orders, total_events, order_status_breakdown), kept from the event log.

The event store is append-only with an increasing sequence, and every order that ends has exactly one event
saying how (FINAL_BY_EVENT). So the counts are a projection of the event log: counts of events up to a
sequence mark are kept in the cache, and each call counts only the events after the mark (a primary-key
range) plus the open orders (APPROVED, EXECUTING: the partial index order_open_idx). Exact, and the cost
follows what is new, not the size of the tables. The mark only moves past events older than
METRICS_COUNT_SETTLE_SECONDS, so a transaction that took a sequence number but had not yet committed is
still counted when it commits. A full recount happens when the cached state expires
(METRICS_RECOUNT_SECONDS) and heals anything that slipped through.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from audit.models import Event
from core.metrics import FINAL_BY_EVENT, log
from orders.models import Order, OrderStatus

_COUNTS_KEY = "itirp:metrics:event-counts:v1"


def _count_sql(*, event_table: str, order_table: str) -> str:
    return f"""
        WITH tail AS (SELECT sequence, event_type, "timestamp" FROM {event_table} WHERE sequence > %s),
             settled AS (SELECT COALESCE(MAX(sequence), %s) AS upto FROM tail WHERE "timestamp" < %s)
        SELECT 'event', t.event_type, COUNT(*), SUM(CASE WHEN t.sequence <= s.upto THEN 1 ELSE 0 END), s.upto
        FROM tail t CROSS JOIN settled s GROUP BY t.event_type, s.upto
        UNION ALL
        SELECT 'order', status, COUNT(*), 0, 0 FROM {order_table} WHERE status IN (%s, %s) GROUP BY status
    """  # noqa: S608 - table names come from the models, every value is a parameter


def _settled_counts(*, table: str, cutoff: Any) -> tuple[int, dict[str, int]]:
    """A full recount: the mark just below the first event younger than the cutoff (found through the
    timestamp index), and the counts of the events up to it (one plain pass, no sorting)."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT MIN(sequence) FROM {table} WHERE "timestamp" >= %s', [cutoff])  # noqa: S608
        first_recent = cursor.fetchone()[0]
        if first_recent is None:
            cursor.execute(f"SELECT MAX(sequence) FROM {table}")  # noqa: S608
            mark = int(cursor.fetchone()[0] or 0)
        else:
            mark = int(first_recent) - 1
        cursor.execute(
            f"SELECT event_type, COUNT(*) FROM {table} WHERE sequence <= %s GROUP BY event_type",  # noqa: S608
            [mark],
        )
        return mark, {name: int(count) for name, count in cursor.fetchall()}


def system_counts() -> dict[str, Any]:
    """{"total_orders", "total_events", "order_status_breakdown"} exactly, without scanning whole tables."""
    try:
        state = cache.get(_COUNTS_KEY)
    except Exception:  # noqa: BLE001 - without the cache every call recounts: slower, still exact
        state = None
    cutoff = timezone.now() - timedelta(seconds=settings.METRICS_COUNT_SETTLE_SECONDS)
    if state:
        mark, settled_counts = state["mark"], dict(state["counts"])
    else:
        mark, settled_counts = _settled_counts(table=Event._meta.db_table, cutoff=cutoff)
    sql = _count_sql(event_table=Event._meta.db_table, order_table=Order._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [mark, mark, cutoff, OrderStatus.APPROVED, OrderStatus.EXECUTING])
        rows = cursor.fetchall()
    events = dict(settled_counts)
    open_orders: dict[str, int] = {}
    new_mark = mark
    for kind, name, count, settled, upto in rows:
        if kind == "event":
            events[name] = events.get(name, 0) + int(count)
            if settled:
                settled_counts[name] = settled_counts.get(name, 0) + int(settled)
            new_mark = max(new_mark, int(upto))
        else:
            open_orders[name] = int(count)
    if new_mark != mark or state is None:
        try:
            cache.set(_COUNTS_KEY, {"mark": new_mark, "counts": settled_counts}, settings.METRICS_RECOUNT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - see above
            log.warning("metrics_counts_not_cached", error=type(exc).__name__)
    breakdown = {status: 0 for status in OrderStatus.values}
    for event_type, status in FINAL_BY_EVENT.items():
        breakdown[status] = events.get(event_type, 0)
    breakdown.update(open_orders)
    return {
        "total_orders": events.get("ORDER_CREATED", 0),
        "total_events": sum(events.values()),
        "order_status_breakdown": breakdown,
    }
