"""Generate the demo's daily price history: deterministic bars ending yesterday at each initial price."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from market.history import history_generate


class Command(BaseCommand):
    help = "Daily bars (weekdays, midnight UTC) per instrument, ending yesterday at its initial_price; idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=520, help="trading days (weekdays) of bars per instrument")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--symbols", nargs="*", default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        instruments, bars = history_generate(days=opts["days"], seed=opts["seed"], symbols=opts["symbols"])
        self.stdout.write(f"generated {bars} daily bars for {instruments} instruments (seed {opts['seed']})")
