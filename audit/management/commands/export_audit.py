"""`manage.py export_audit --since ... --until ... [--out FILE]`: events as JSON lines with their hashes.

The file holds every seal that covers an exported event, each followed by its members in sequence order:
the exported events in full ({"type": "event"}) and the seal's other events as hashes only
({"type": "hash"}), so tools/verify_audit_export.py can recompute each chain and seal offline.
Exported events newer than the last seal follow, marked unsealed. A footer carries the counts and the
sha256 of every byte before it. Every line is canonical JSON (sorted keys, no spaces). The export is
recorded as an AUDIT_EXPORTED event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import User
from audit import integrity
from audit.models import Event, EventHash, EventType, Seal
from audit.services import event_record

FORMAT = "itirp-audit-export/1"


def _when(text: str) -> dt.datetime:
    moment = parse_datetime(text)
    if moment is None and (day := parse_date(text)) is not None:
        moment = dt.datetime.combine(day, dt.time())
    if moment is None:
        raise CommandError(f"not a date or ISO datetime: {text!r}")
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


class _Writer:
    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.digest, self.lines = out, hashlib.sha256(), 0

    def write(self, obj: dict[str, Any]) -> None:
        line = (json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
        self.out.write(line)
        self.digest.update(line)
        self.lines += 1


def _event_line(row: dict[str, Any], record: EventHash | None) -> dict[str, Any]:
    content = integrity.canonical_content(row)
    return {
        "type": "event",
        "sequence": content["sequence"],
        "content_hash": record.content_hash if record else integrity.content_hash(content),
        "chain_hash": record.chain_hash if record else None,
        "event": content,
    }


def export(*, since: dt.datetime, until: dt.datetime, out: IO[bytes]) -> dict[str, Any]:
    """Write the export and return its counts and digest."""
    writer = _Writer(out)
    writer.write(
        {
            "type": "header",
            "format": FORMAT,
            "since": integrity.timestamp_text(since),
            "until": integrity.timestamp_text(until),
            "exported_at": integrity.timestamp_text(timezone.now()),
            "genesis": integrity.GENESIS,
        }
    )
    in_range = Event.objects.filter(timestamp__gte=since, timestamp__lt=until)
    head = Seal.objects.order_by("-number").first()
    sealed_limit = head.last_sequence if head else 0
    counts = {"events": 0, "seals": 0, "unsealed": 0}
    sealed = in_range.filter(sequence__lte=sealed_limit)
    first_seq = sealed.order_by("sequence").values_list("sequence", flat=True).first()
    if first_seq is not None:
        last_seq = sealed.order_by("-sequence").values_list("sequence", flat=True).first()
        seals = Seal.objects.filter(last_sequence__gte=first_seq, first_sequence__lte=last_seq).order_by("number")
        first_seal, last_seal = seals.first(), seals.last()
        assert first_seal is not None and last_seal is not None  # the sealed range holds events, so seals
        low, high = first_seal.first_sequence, last_seal.last_sequence
        wanted = {
            row["sequence"]: row for row in integrity.event_rows(in_range.filter(sequence__gte=low, sequence__lte=high))
        }
        records = EventHash.objects.filter(sequence__gte=low, sequence__lte=high).order_by("sequence")
        pending = iter(records.iterator(chunk_size=2000))
        record = next(pending, None)
        for seal in seals.iterator(chunk_size=500):
            writer.write(
                {
                    "type": "seal",
                    **integrity.seal_fields(seal),
                    "seal_hash": seal.seal_hash,
                    "key_id": seal.key_id,
                    "signature": seal.signature,
                }
            )
            counts["seals"] += 1
            while record is not None and record.sequence <= seal.last_sequence:
                row = wanted.pop(record.sequence, None)
                if row is not None:
                    writer.write(_event_line(row, record))
                    counts["events"] += 1
                else:
                    writer.write(
                        {
                            "type": "hash",
                            "sequence": record.sequence,
                            "event_id": str(record.event_id),
                            "content_hash": record.content_hash,
                            "chain_hash": record.chain_hash,
                        }
                    )
                record = next(pending, None)
    for row in integrity.event_rows(in_range.filter(sequence__gt=sealed_limit)):
        writer.write(_event_line(row, None))
        counts["unsealed"] += 1
    footer = {"type": "footer", "lines": writer.lines, **counts, "sha256": writer.digest.hexdigest()}
    writer.write(footer)
    return footer


class Command(BaseCommand):
    help = "Export audit events in a time range as JSON lines with hashes and seals (verifiable offline)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--since", required=True, help="ISO date or datetime (UTC if no offset), inclusive")
        parser.add_argument("--until", required=True, help="ISO date or datetime (UTC if no offset), exclusive")
        parser.add_argument("--out", help="file to write (default: standard output)")
        parser.add_argument("--actor", help="username of the person exporting (recorded in AUDIT_EXPORTED)")
        parser.add_argument("--no-seal", action="store_true", help="do not seal settled events first")

    def handle(self, *args: Any, **options: Any) -> None:
        since, until = _when(options["since"]), _when(options["until"])
        if since >= until:
            raise CommandError("--since must be before --until")
        actor = None
        if options["actor"]:
            actor = User.objects.filter(username=options["actor"]).first()
            if actor is None:
                raise CommandError(f"no user {options['actor']!r}")
        if not options["no_seal"]:
            integrity.seal_pending()
        with transaction.atomic():
            if options["out"]:
                with open(options["out"], "wb") as out:
                    footer = export(since=since, until=until, out=out)
            else:
                footer = export(since=since, until=until, out=sys.stdout.buffer)
                sys.stdout.flush()
            event_record(
                event_type=EventType.AUDIT_EXPORTED,
                actor=actor,
                payload={
                    "since": integrity.timestamp_text(since),
                    "until": integrity.timestamp_text(until),
                    "out": options["out"] or "-",
                    "events": footer["events"],
                    "unsealed": footer["unsealed"],
                    "seals": footer["seals"],
                    "sha256": footer["sha256"],
                },
            )
        if options["out"]:
            self.stderr.write(
                f"exported {footer['events']} sealed and {footer['unsealed']} unsealed events, "
                f"{footer['seals']} seals to {options['out']}"
            )
