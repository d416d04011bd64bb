"""`manage.py verify_audit [--full]`: seal settled events, verify the trail against its seals and its outside
witness, record AUDIT_VERIFIED.

Re-hashes the events from the last verified seal on (all of them with --full); every seal is checked
against the witness each time. Prints OK, or FAILED with the first bad sequence and exits 1: a damaged
trail is a report, never a traceback.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import integrity
from audit.models import Seal


class Command(BaseCommand):
    help = "Verify the audit trail's seals, hash chain and outside witness; exit 1 at the first bad sequence."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--full", action="store_true", help="re-hash every event, not only since the last run")
        parser.add_argument("--no-seal", action="store_true", help="verify only, do not seal new events first")
        parser.add_argument("--no-record", action="store_true", help="do not record an AUDIT_VERIFIED event")
        parser.add_argument(
            "--expect-seal",
            action="append",
            default=[],
            metavar="NUMBER:HASH",
            help="a seal hash kept outside the database (e.g. from an export): must still match",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = integrity.verify_and_record(
            seal_first=not options["no_seal"], full=options["full"], record=not options["no_record"]
        )
        anchors_bad = [text for text in options["expect_seal"] if not _anchor_holds(text)]
        for problem in sorted(report.problems, key=lambda p: p.sequence)[:20]:
            self.stderr.write(f"  {problem}")
        for text in anchors_bad:
            self.stderr.write(f"  seal {text} kept outside does not match the database")
        if not report.ok or anchors_bad:
            raise CommandError(report.summary() if not report.ok else "FAILED: a seal kept outside does not match")
        self.stdout.write(report.summary())


def _anchor_holds(text: str) -> bool:
    number, _, digest = text.partition(":")
    if not number.isdigit() or len(digest) != 64:
        raise CommandError(f"--expect-seal wants NUMBER:HASH (64 hex digits), not {text!r}")
    return Seal.objects.filter(number=int(number), seal_hash=digest.lower()).exists()
