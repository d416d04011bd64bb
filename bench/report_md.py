"""The markdown report of `make bench` (bench/results/bench.md), from the figures run_bench.py collected."""

from __future__ import annotations

from typing import Any

from cost import cost_lines


def ratio(ours: float, base: float) -> str:
    return f"{ours / base:.2f}" if base else "n/a"


def before_feed(r: dict[str, Any]) -> str:
    """Whether the earlier commit carried the same market-data feed as this one (fair) or none."""
    if r["before"].get("feed"):
        return "its own market-data feed at the same rate, as this commit had"
    if any("run_feed" in command for command in r.get("topology", [])):
        return "**no market-data feed: that commit has none, so its figures lack this commit's feed load**"
    return "no market-data feed, as for this commit"


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
        f"Topology: web = {r['web']} (production's command, DEBUG off, LOG_LEVEL INFO to a file), a Celery worker"
        " (prefork, concurrency 2, default simulated venue: 100 ms, 90 % success) and beat, database `itirp_bench`"
        " (recreated), Redis db 8. Commands:",
        "",
        *[f"- `{c}`" for c in r["topology"]],
        "",
        "Every percentile in this report is the nearest rank (bench/percentiles.py: the smallest value that at"
        " least p % of the values do not exceed), computed by the harness; wrk's latencies are read from its"
        " full histogram (orders.lua writes it), not from wrk's own percentiles.",
        "",
        "## POST /api/v1/orders (wrk, every order unique, 2 threads)",
        "",
        f"Sent by: {r.get('spread') or 'one trader, default book'} (the earlier commit's run: one trader, no books).",
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
            f"Before and after, same run: the web server and worker of commit {b['rev']} (its own database, migrated"
            f" by its own code; {before_feed(r)}; the load over {b.get('spread', 'one trader, default book')}),"
            f" {b['web']}, 10 s per level:",
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
    lines += ["", *cost_lines(r["cost"], r["components"], r["drain_s"])]
    lines += [
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
        *(
            [f"## Risk analytics (`{r['analytics']['command']}`)", "", r["analytics"]["output"], ""]
            if r.get("analytics")
            else []
        ),
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
