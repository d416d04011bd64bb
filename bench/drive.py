"""Load drivers of the benchmark: HTTP calls, wrk (latency percentiles computed here), pgbench."""

# ruff: noqa: S603, S607, S310 - a local script: our own commands, our own 127.0.0.1 servers

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from percentiles import expand, percentile
from servers import log

LUA_SCRIPT = Path(__file__).resolve().parent / "orders.lua"  # shared with bench_orders.py


def http(method: str, url: str, body: Any = None, token: str | None = None, *, timeout: float = 30) -> tuple[int, Any]:
    """One JSON request: (status, decoded body; the body's text when it is not JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")[:2000]


@dataclass(frozen=True)
class Spread:
    """Who sends the POST /orders load and in which books: traders' tokens, and for each the books it may
    trade (orders.lua sends request n as trader n mod len(tokens), in the next of its books)."""

    tokens: list[str]
    books: list[list[str]]

    def environment(self) -> dict[str, str]:
        return {"BENCH_TOKENS": " ".join(self.tokens), "BENCH_BOOKS": "|".join(",".join(b) for b in self.books)}

    def describe(self) -> str:
        return f"{len(self.tokens)} traders over {len({b for books in self.books for b in books})} books"


def wrk_figures(out: str, histogram: Path) -> dict[str, Any]:
    """orders.lua's BENCH lines (counts) and its latency histogram file ("µs count" per line): p50/p90/p99
    and max in µs, by the bench's one percentile function rather than wrk's own."""
    figures: dict[str, Any] = {}
    for key, value in re.findall(r"(\w+)=(\d+)", "\n".join(line for line in out.splitlines() if "BENCH" in line)):
        figures[key] = int(value)
    pairs = [(int(v), int(c)) for v, c in (line.split() for line in histogram.read_text().splitlines() if line)]
    latencies = expand(pairs) or [0]
    for pct in (50, 90, 99):
        figures[f"p{pct}_us"] = percentile(latencies, pct)
    figures["max_us"] = max(latencies)
    return figures


def wrk(
    url: str, token: str, *, threads: int, connections: int, duration: int, run: str, spread: Spread | None = None
) -> dict[str, Any]:
    """One wrk run of orders.lua: its command line, counts and latency figures, and its printed output.
    With a spread, the orders go out from its traders in their books; without, from `token`'s user with no
    "book" in the body (its default book; a server from before books)."""
    cmd = ["/usr/bin/wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency"]
    cmd += ["-s", str(LUA_SCRIPT), url]
    log("$ " + shlex.join(cmd))
    if not Path(cmd[0]).exists():
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="itirp-wrk-") as folder:
        histogram = Path(folder) / "latency.txt"
        env = {**os.environ, "BENCH_TOKEN": token, "BENCH_RUN": run, "BENCH_LATENCY_FILE": str(histogram)}
        env.update(spread.environment() if spread else {"BENCH_TOKENS": "", "BENCH_BOOKS": ""})
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        figures = wrk_figures(out, histogram)
    spread_note = spread.describe() if spread else ""
    return {"command": shlex.join(cmd), "connections": connections, "raw": out, "spread": spread_note, **figures}


def run_wrk(
    url: str, token: str, *, connections: int, duration: int, run: str, spread: Spread | None = None
) -> dict[str, Any]:
    figures = wrk(url, token, threads=2, connections=connections, duration=duration, run=run, spread=spread)
    figures["ok"] = figures["approved"] + figures["rejected"]  # answered 200, whatever the risk decision
    figures["non200"] = figures["other"]
    figures["rps"] = figures["ok"] / (figures["duration_us"] / 1e6)  # answered 200 per second
    log(
        f"   {figures['rps']:.0f} ok/s, p50 {figures['p50_us'] / 1000:.1f} ms, p99 {figures['p99_us'] / 1000:.1f} ms,"
        f" max {figures['max_us'] / 1000:.0f} ms, non-200 {figures['non200']}, socket errors {figures['errors']}"
    )
    return figures


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
