"""`manage.py load_instruments [PATH] [--new-only]`: list instruments from a JSON or CSV file (the demo set by
default), all or nothing, through market.services.instruments_load.

JSON: a list of objects with the instrument fields. CSV: a header row of field names, one instrument a row
(an empty cell is no value). Rows are numbered from 1, the header not counted. Running it twice changes
nothing the second time.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.exceptions import ItirpError
from market import services

DEMO = Path(__file__).resolve().parents[2] / "data" / "instruments.json"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def rows_read(path: Path) -> list[dict[str, Any]]:
    """The rows of a .json or .csv file of instruments (numbers read exactly, as Decimal)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            rows = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(rows, list):
            raise CommandError(f"{path}: expected a JSON list of instrument objects")
        return rows
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = []
        for number, row in enumerate(reader, start=1):
            if None in row:
                raise CommandError(f"Row {number}: more cells than the header has names")
            rows.append({name.strip(): value for name, value in row.items() if name is not None})
        return rows
    raise CommandError(f"{path}: expected a .json or .csv file")


class Command(BaseCommand):
    help = "List instruments from a JSON or CSV file (default: the demo set), all or nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", default=str(DEMO), help="a .json or .csv file (default: demo set)")
        parser.add_argument(
            "--new-only",
            action="store_true",
            help="list the instruments not yet listed; leave the listed ones as the back office left them",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        rows = rows_read(path)
        try:
            result = services.instruments_load(rows, source=f"file:{path.name}", new_only=options["new_only"])
        except ItirpError as exc:
            raise CommandError(f"{path}: {exc.message} Nothing was loaded.") from exc
        self.stdout.write(
            f"Instruments from {path.name}: {len(result.listed)} listed, {len(result.changed)} changed, "
            f"{len(result.unchanged)} unchanged."
        )
