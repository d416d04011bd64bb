"""`manage.py replay_events [--verify]`: rebuild positions, daily volumes, reservations and order statuses,
per scope (firm, desk, book, trader, symbol), from the events alone; with --verify compare them with the
live tables and exit 1 on any difference (each names its scope and symbol)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import replay


class Command(BaseCommand):
    help = "Rebuild state from the event trail; --verify compares it with the live tables."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--verify", action="store_true", help="compare with the live tables, exit 1 on a difference"
        )
        parser.add_argument("--orders", action="store_true", help="list every order's replayed status")

    def handle(self, *args: Any, **options: Any) -> None:
        state = replay.rebuild()
        if options["verify"]:
            diffs = replay.differences(state)
            for line in diffs:
                self.stdout.write(f"  {line}")
            if diffs:
                raise CommandError(f"replay differs from the live tables in {len(diffs)} places")
            self.stdout.write(
                f"OK: {state.events} events replayed; {len(state.books)} positions, {len(state.orders)} orders, "
                "daily volume and reservations equal the live tables; "
                f"{len(state.positions) - len(state.books)} desk, book and trader positions and "
                f"{len(state.scopes)} scopes' volumes too"
            )
            return
        self.stdout.write(f"{state.events} events replayed")
        self.stdout.write(
            f"risk state: trading_day {state.trading_day} executed_volume {state.executed_volume} "
            f"open_volume {state.open_volume}"
        )
        for symbol, holding in sorted(state.books.items()):
            values = " ".join(f"{name} {value}" for name, value in holding.values().items())
            self.stdout.write(f"position {symbol}: {values}")
        for (scope, symbol), holding in sorted(state.positions.items()):
            if scope != replay.FIRM_SCOPE:
                values = " ".join(f"{name} {value}" for name, value in holding.values().items())
                self.stdout.write(f"position {scope} {symbol}: {values}")
        for scope, volumes in sorted(state.scopes.items()):
            self.stdout.write(
                f"scope {scope}: trading_day {volumes.trading_day} executed_volume {volumes.executed_volume} "
                f"open_volume {volumes.open_volume}"
            )
        counts = Counter(order.status for order in state.orders.values())
        self.stdout.write("orders: " + (", ".join(f"{s} {n}" for s, n in sorted(counts.items())) or "none"))
        if options["orders"]:
            for order_id, order in state.orders.items():
                self.stdout.write(f"order {order_id}: {order.status}")
        for line in state.anomalies:
            self.stdout.write(f"anomaly {line}")
