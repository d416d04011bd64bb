"""Load daily bars from a CSV file (symbol,date,open,high,low,close), whole or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from market.history import BadHistoryFile, history_load


class Command(BaseCommand):
    help = "Upsert daily bars from a CSV file; the first bad row refuses the whole file (named by row number)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, **opts: Any) -> None:
        path: Path = opts["path"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            instruments, bars = history_load(path=path)
        except (BadHistoryFile, UnicodeDecodeError) as exc:
            raise CommandError(f"{path}: {exc}") from None
        self.stdout.write(f"loaded {bars} daily bars for {instruments} instruments from {path}")
