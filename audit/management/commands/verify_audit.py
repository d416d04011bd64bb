"""`manage.py verify_audit`: seal settled events, verify every seal and sealed event, record AUDIT_VERIFIED.

Prints OK with the head seal's hash (keep it somewhere else: it anchors the trail), or the first event
that was changed, deleted, inserted or reordered, and exits 1.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import integrity


class Command(BaseCommand):
    help = "Verify the audit trail's seals and hash chain; exit 1 at the first tampered event."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-seal", action="store_true", help="verify only, do not seal new events first")
        parser.add_argument("--no-record", action="store_true", help="do not record an AUDIT_VERIFIED event")
        parser.add_argument(
            "--expect-seal",
            action="append",
            default=[],
            metavar="NUMBER:HASH",
            help="a seal hash kept outside the database (e.g. from an earlier run or export): must still match",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["no_record"]:
            if not options["no_seal"]:
                integrity.seal_pending()
            report = integrity.verify()
        else:
            report = integrity.verify_and_record(seal_first=not options["no_seal"])
        anchors_bad = [text for text in options["expect_seal"] if not _anchor_holds(text)]
        for problem in sorted(report.problems, key=lambda p: p.sequence)[:20]:
            self.stderr.write(f"  {problem}")
        for text in anchors_bad:
            self.stderr.write(f"  seal {text} kept outside does not match the database")
        if not report.ok or anchors_bad:
            raise CommandError(report.summary() if not report.ok else "FAILED: a seal kept outside does not match")
        self.stdout.write(report.summary())


def _anchor_holds(text: str) -> bool:
    from audit.models import Seal

    number, _, digest = text.partition(":")
    if not number.isdigit() or len(digest) != 64:
        raise CommandError(f"--expect-seal wants NUMBER:HASH (64 hex digits), not {text!r}")
    return Seal.objects.filter(number=int(number), seal_hash=digest.lower()).exists()
