"""Cost per order: a wrk run of POST /orders with the CPU of every component metered over it (cpu_meter),
the worker given a few seconds to drain, and the group-commit histograms read from /metrics before and after.
"""

# ruff: noqa: S310 - our own 127.0.0.1 server

from __future__ import annotations

import time
import urllib.request
from typing import Any

from cpu_meter import Component, CpuMeter
from drive import Spread, run_wrk
from percentiles import expand, percentile
from servers import log

BATCH_SIZE = "itirp_order_batch_size"
BATCH_SECONDS = "itirp_order_batch_seconds"
LOCK_HOLD = "itirp_risk_lock_hold_seconds"
EXECUTIONS = "itirp_execution_seconds"
LONG_HOLDS = "itirp_risk_lock_long_holds_total"
LONG_GC = "itirp_gc_long_pauses_total"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text scrape, keyed by (name, sorted labels); {} if it cannot be read."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    except OSError as exc:
        log(f"   no metrics from {url}: {exc}")
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def histogram_delta(before: dict, after: dict, name: str) -> dict[str, Any] | None:
    """Observations of one histogram between two scrapes: per-bucket counts (upper bound -> n), sum, count.
    None when the server does not record it (an older commit)."""
    if (f"{name}_count", ()) not in after:
        return None
    les = sorted((dict(labels)["le"] for (sample, labels) in after if sample == f"{name}_bucket"), key=float)
    cumulative = [
        after[(f"{name}_bucket", (("le", le),))] - before.get((f"{name}_bucket", (("le", le),)), 0.0) for le in les
    ]
    previous = [0.0, *cumulative[:-1]]
    return {
        "buckets": {float(le): int(c - p) for le, c, p in zip(les, cumulative, previous, strict=True)},
        "sum": after.get((f"{name}_sum", ()), 0.0) - before.get((f"{name}_sum", ()), 0.0),
        "count": int(after[(f"{name}_count", ())] - before.get((f"{name}_count", ()), 0.0)),
    }


def histogram_percentile(h: dict[str, Any], pct: float) -> float:
    """The bucket bound that the nearest-rank percentile of the observations does not exceed."""
    return percentile(expand((bound, n) for bound, n in h["buckets"].items()), pct)


def _executions(before: dict, after: dict) -> int:
    """Execution attempts finished between the scrapes (any outcome)."""
    total = 0.0
    for (sample, labels), value in after.items():
        if sample == f"{EXECUTIONS}_count":
            total += value - before.get((sample, labels), 0.0)
    return int(total)


def counted(before: dict, after: dict, name: str, label: str) -> dict[str, int] | None:
    """A labelled counter's increase between the scrapes, by its label's value (those that rose only); None
    when the server has no pause counters (an older commit: core.pauses exports the collector's at 0 from the
    start, the lock's once a long hold is seen)."""
    if not any(sample == LONG_GC for sample, _ in after):
        return None
    rose: dict[str, int] = {}
    for (sample, labels), value in after.items():
        if sample == name:
            delta = int(value - before.get((sample, labels), 0.0))
            if delta:
                rose[dict(labels).get(label, "?")] = delta
    return rose


def queue_left() -> int | None:
    """Tasks waiting or reserved in the Celery queue (Redis), read in this process."""
    from core.metrics import queue_depth

    try:
        depth = queue_depth()
    except Exception as exc:  # noqa: BLE001 - the figure is reported as unknown, the run goes on
        log(f"   queue depth unreadable: {exc}")
        return None
    return depth["waiting"] + depth["unacked"]


# An APPROVED order with ORDER_RESTING waits at the venue for the market to reach its limit, by design: not work
# the worker owes. (The bench's orders are marketable when sent, but with the feed on a price can move past one.)
_NOT_RESTING = (
    " AND NOT (status = 'APPROVED' AND EXISTS (SELECT 1 FROM audit_event e"
    " WHERE e.order_id = orders_order.id AND e.event_type = 'ORDER_RESTING'))"
)


def unexecuted(database: str | None) -> int | None:
    """Orders of the bench database approved and not yet done at a venue (APPROVED or EXECUTING), those resting
    at the venue until the market reaches them left out: the work the worker still owes, whether or not a
    message for it is still queued (a group takes orders other messages name; a retry waits in the broker's
    reserved set)."""
    return orders_counted(database, ("APPROVED", "EXECUTING"), where=_NOT_RESTING)


def vacuumed(database: str | None) -> None:
    """VACUUM ANALYZE of the bench database, before a measured run (not metered): what autovacuum does on a
    PostgreSQL with its defaults. This machine's server runs with autovacuum = off: never analyzed, the
    tables' statistics were a new table's guesses (an execution group's look-up of waiting orders read
    16,000 events per order it considered, 360 ms with 250 orders resting, against 11 ms once analyzed), and
    every run's updated orders stayed dead rows for the next to read past."""
    if not database:
        return
    import psycopg
    from bench_db import PG

    with psycopg.connect(f"{PG}/{database}", autocommit=True) as conn:
        (on,) = conn.execute("SHOW autovacuum").fetchone() or ("on",)
        if on != "on":
            started = time.monotonic()
            conn.execute("VACUUM ANALYZE")
            log(f"VACUUM ANALYZE of {database} (autovacuum is {on} here): {time.monotonic() - started:.1f} s")


def orders_counted(database: str | None, statuses: tuple[str, ...], *, where: str = "") -> int | None:
    """How many orders of the bench database are in one of `statuses` and meet `where` (SQL, " AND ...")
    (None without a database)."""
    if not database:
        return None
    import psycopg
    from bench_db import PG

    try:
        with psycopg.connect(f"{PG}/{database}", autocommit=True) as conn:
            sql = "SELECT count(*) FROM orders_order WHERE status = ANY(%s)" + where  # noqa: S608 - our text
            row = conn.execute(sql, [list(statuses)]).fetchone()
    except Exception as exc:  # noqa: BLE001 - reported as unknown, the run goes on
        log(f"   orders unreadable: {exc}")
        return None
    return int(row[0]) if row else None


def measure_orders(
    base: str,
    token: str,
    *,
    connections: int,
    duration: int,
    run: str,
    components: list[Component],
    drain_s: float,
    spread: Spread | None = None,
    database: str | None = None,
) -> dict[str, Any]:
    """wrk on POST {base}/api/v1/orders with CPU metered from its start to the end of the drain (at most
    drain_s seconds after the window, less once the queue is empty and, with `database`, no order is left
    approved and unexecuted): CPU ms per order answered 200, by component. The database is vacuumed and
    analyzed first where autovacuum is off (vacuumed)."""
    vacuumed(database)
    before = scrape(f"{base}/metrics")
    rejected_before = orders_counted(database, ("REJECTED",))
    meter = CpuMeter(components)
    meter.start()
    figures = run_wrk(
        f"{base}/api/v1/orders", token, connections=connections, duration=duration, run=run, spread=spread
    )
    drain_started = time.monotonic()
    left, owed = queue_left(), unexecuted(database)
    while (left or owed) and time.monotonic() - drain_started < drain_s:
        time.sleep(0.25)
        left, owed = queue_left(), unexecuted(database)
    drained = time.monotonic() - drain_started
    cpu = meter.stop()
    after = scrape(f"{base}/metrics")
    orders = figures["ok"]
    figures["cpu_s"] = cpu
    figures["cpu_ms_per_order"] = {name: (s * 1000 / orders if orders else 0.0) for name, s in cpu.items()}
    figures["drain_s"] = drained
    figures["queue_left"] = left
    figures["unexecuted"] = owed
    # Answered 200 but refused by a pre-trade check: a refusal costs less than an order, so a run with many
    # measures something else (the bench's limits or prices gone stale); the table shows them.
    rejected_after = orders_counted(database, ("REJECTED",))
    figures["rejected"] = (
        rejected_after - rejected_before if rejected_after is not None and rejected_before is not None else None
    )
    figures["executions"] = _executions(before, after) if after else None
    figures["batch_size"] = histogram_delta(before, after, BATCH_SIZE)
    figures["batch_seconds"] = histogram_delta(before, after, BATCH_SECONDS)
    figures["lock_hold"] = histogram_delta(before, after, LOCK_HOLD)
    figures["long_holds"] = counted(before, after, LONG_HOLDS, "holder") if after else None
    figures["long_gc"] = counted(before, after, LONG_GC, "generation") if after else None
    per_order = ", ".join(f"{name} {ms:.2f}" for name, ms in figures["cpu_ms_per_order"].items())
    log(
        f"   CPU ms per order: {per_order}; drained {drained:.1f} s, queue left {left}, unexecuted {owed},"
        f" rejected {figures['rejected']}"
    )
    return figures


# --- report -------------------------------------------------------------------------------------------------


def _na(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _total(f: dict[str, Any]) -> float:
    return sum(f["cpu_ms_per_order"].values())


def cost_lines(runs: list[tuple[str, dict[str, Any]]], components: list[str], drain_s: float) -> list[str]:
    """The report's tables: CPU per order by component, then group commit's batches, for each run."""
    head = " | ".join(f"{name} ms" for name in components)
    lines = [
        "## CPU per order, by component",
        "",
        "CPU time (utime + stime from /proc/<pid>/stat, reaped children included) of each component from the"
        f" start of the wrk run to the end of the worker's drain (up to {drain_s:.0f} s after the window, less if"
        " the queue emptied), divided by the orders answered 200 in the window (rejected: how many of them a"
        " pre-trade check refused). web = the web server's processes (its main process and"
        " workers); worker = the Celery worker (main process and pool) and beat; PostgreSQL = the backends of"
        " database `itirp_bench` (not the server's shared walwriter, checkpointer, background writer); Redis ="
        " the Redis server, **shared with other users of this machine** (its CPU includes theirs);"
        " feed = the market-data feed's process group, when one runs.",
        "",
        f"| run | connections | orders/s | rejected | p50 ms | p99 ms | {head} | total ms | executions finished |"
        " queue left | unexecuted | drain s |",
        "|---|---|---|---|---|---|" + "---|" * len(components) + "---|---|---|---|---|",
    ]
    for label, f in runs:
        cells = " | ".join(f"{f['cpu_ms_per_order'].get(name, 0.0):.2f}" for name in components)
        lines.append(
            f"| {label} | {f['connections']} | {f['rps']:.0f} | {_na(f.get('rejected'))} | {f['p50_us'] / 1000:.1f} |"
            f" {f['p99_us'] / 1000:.1f} |"
            f" {cells} | **{_total(f):.2f}** | {f['executions'] if f['executions'] is not None else 'n/a'} |"
            f" {f['queue_left'] if f['queue_left'] is not None else 'n/a'} |"
            f" {f['unexecuted'] if f.get('unexecuted') is not None else 'n/a'} |"
            f" {f['drain_s']:.1f} |"
        )
    lines += [
        "",
        "Executions finished = execution attempts recorded (itirp_execution_seconds, any outcome) over the same"
        " span; the worker's CPU covers them, and the queue left behind is executed in later runs, so its"
        " ms per order is a figure of this span, not of these orders alone. Unexecuted = orders of the"
        " database still APPROVED or EXECUTING at the end of the drain (all of the run's, the warm-up's and"
        " earlier runs' included; not those resting at the venue until the market reaches their limit): the work"
        " the worker still owed, whether or not a message for it was queued."
        " Drain s = how long after the window the queue took to empty with no order left unexecuted (the issue's"
        f" target: within 10 s), or the whole {drain_s:.0f} s allowed when it did not.",
        "",
        "## Group commit: batch sizes and the risk lock",
        "",
        "From itirp_order_batch_size and itirp_order_batch_seconds (orders/batching.py), read from /metrics"
        " before and after each run. A batch's seconds are the wall time of its transaction (the run_batch"
        " call: waiting for the risk lock, holding it, checks, inserts, commit, then its one execution message): **an upper bound of the lock's"
        " hold time**, not the hold itself; percentiles are bucket bounds (the bucket holding that rank)."
        " The hold is itirp_risk_lock_hold_seconds (orders/submission.py): from the answer of the read that"
        " takes the lock to the end of the commit, **a lower bound** of the hold (the lock is granted during"
        " that read's round trip). Hold s per s of window is the share of time the lock was held by"
        " submissions; orders per s of lock held = orders in batches / hold seconds, the rate at which the"
        " lock alone would saturate (DESIGN-NOTES.md, scale-out).",
        "",
        "| run | connections | batches | orders in batches | mean size | p50 size ≤ | p99 size ≤ | mean batch ms"
        " | p50 ms ≤ | p99 ms ≤ | batch s per s of window | mean hold ms | p99 hold ms ≤ | hold s per s of window"
        " | orders per s of lock held | sizes: bucket ≤ bound: batches |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, f in runs:
        size, secs = f.get("batch_size"), f.get("batch_seconds")
        if not size or not secs or not size["count"]:
            lines.append(f"| {label} | {f['connections']} | not recorded by this server | | | | | | | | | | | | | |")
            continue
        n = size["count"]
        window = f["duration_us"] / 1e6
        spread = ", ".join(f"≤{b:g}: {c}" for b, c in size["buckets"].items() if c)
        hold = f.get("lock_hold")
        if hold and hold["count"]:
            held = (
                f" {hold['sum'] * 1000 / hold['count']:.2f} | {histogram_percentile(hold, 99) * 1000:g} |"
                f" {hold['sum'] / window:.2f} | {size['sum'] / hold['sum']:.0f} |"
            )
        else:
            held = " not recorded | | | |"
        lines.append(
            f"| {label} | {f['connections']} | {n} | {size['sum']:.0f} | {size['sum'] / n:.2f} |"
            f" {histogram_percentile(size, 50):g} | {histogram_percentile(size, 99):g} |"
            f" {secs['sum'] * 1000 / n:.2f} | {histogram_percentile(secs, 50) * 1000:g} |"
            f" {histogram_percentile(secs, 99) * 1000:g} | {secs['sum'] / window:.2f} |{held} {spread} |"
        )
    lines += [
        "",
        "Batch seconds per second of window above 1 means batches of the two web processes overlapped, i.e."
        " one waited for the other's lock: the hold itself is at most 1 s per s.",
        "",
        *pause_lines(runs),
    ]
    return lines


def pause_lines(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The pauses that hold up every request at once (core.pauses), beside each run's slowest answer: where a
    run's tail came from, when it came from one of them."""
    lines = [
        "## Pauses: long holds of the risk lock, long collector passes",
        "",
        "From itirp_risk_lock_long_holds (a hold of RISK_LOCK_WARN_SECONDS, by default 0.25 s, or more, by the"
        " function holding the lock: web and worker alike) and itirp_gc_long_pauses (a collector pass of"
        " GC_PAUSE_WARN_SECONDS, by default 0.1 s, or more, by generation), read from /metrics before and after each run"
        " (drain included). Each is logged too (risk_lock_held_long, gc_pause_long), with its duration.",
        "",
        "| run | connections | slowest answer ms | long risk-lock holds | long collector passes |",
        "|---|---|---|---|---|",
    ]
    for label, f in runs:
        holds, passes = f.get("long_holds"), f.get("long_gc")

        def shown(found: dict[str, int] | None, prefix: str = "") -> str:
            if found is None:
                return "not recorded by this server"
            return ", ".join(f"{prefix}{key}: {n}" for key, n in sorted(found.items())) or "none"

        lines.append(
            f"| {label} | {f['connections']} | {f['max_us'] / 1000:.0f} | {shown(holds)} |"
            f" {shown(passes, 'generation ')} |"
        )
    return [*lines, ""]
