"""The trail's outside witness: every seal's number and hash, written where the database cannot reach.

Chosen by AUDIT_WITNESS (comma-separated): "file" appends one JSON line per seal to
AUDIT_WITNESS_DIR/<trail id>.jsonl, fsynced (put the directory on another volume or host: a witness the
database's superuser can also edit proves nothing); "syslog" sends the same line to syslog
(AUDIT_WITNESS_SYSLOG_ADDRESS), write-only, for a SIEM to keep. "none" turns witnessing off (tests, or
a deliberate opt-out that `verify_audit` then reports). Each trail has its own witness, keyed by the
trail's identity (audit.models.Trail), and every entry names it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import logging.handlers
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from audit.integrity.hashing import canonical_json, timestamp_text
from audit.models import Seal

logger = logging.getLogger("itirp.audit")

FORMAT = "itirp-audit-witness/1"
# The file witness finds its head in this much of its end (an entry is ~400 bytes).
TAIL_BYTES = 64 * 1024


class WitnessUnavailable(Exception):
    """A witness could not be written or read: sealing stops rather than go on unwitnessed."""


def entry_of(seal: Seal, trail_id: str) -> dict[str, Any]:
    """What the witness keeps of one seal: enough to tell a missing tail, a replaced seal and an unpinned gap."""
    return {
        "format": FORMAT,
        "trail": trail_id,
        "number": int(seal.number),
        "first_sequence": int(seal.first_sequence),
        "last_sequence": int(seal.last_sequence),
        "event_count": int(seal.event_count),
        "gaps": [[int(a), int(b)] for a, b in seal.gaps],
        "seal_hash": seal.seal_hash,
        "previous_hash": seal.previous_hash,
        "sealed_at": timestamp_text(seal.sealed_at),
        "witnessed_at": timestamp_text(timezone.now()),
    }


class Witness(Protocol):
    name: str
    readable: bool

    def write(self, entries: Sequence[dict[str, Any]], trail_id: str) -> None: ...


class FileWitness:
    """An append-only JSON-lines file per trail; each write is flushed and fsynced before it returns."""

    name = "file"
    readable = True

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, trail_id: str) -> Path:
        return self.directory / f"{trail_id}.jsonl"

    def write(self, entries: Sequence[dict[str, Any]], trail_id: str) -> None:
        if not entries:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.path(trail_id)
            created = not path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # two sealers' lines never interleave
                # A seal's own write and another sealer's catch-up may both carry it: keep the file in order.
                head = self.head(trail_id) if not created else None
                fresh = [entry for entry in entries if head is None or entry["number"] > head["number"]]
                data = "".join(canonical_json(entry) + "\n" for entry in fresh).encode("utf-8")
                if data:
                    os.write(fd, data)
                    os.fsync(fd)
            finally:
                os.close(fd)
            if created:  # the new file's name must survive a crash too
                dir_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            raise WitnessUnavailable(f"file witness {self.directory}: {exc}") from exc

    def _parse(self, lines: Iterable[bytes], trail_id: str, *, first_line: int) -> list[dict[str, Any]]:
        entries = []
        for number, raw in enumerate(lines, start=first_line):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
                entry["number"], entry["seal_hash"] = int(entry["number"]), str(entry["seal_hash"])
            except (ValueError, KeyError, TypeError) as exc:
                raise WitnessUnavailable(f"file witness {self.path(trail_id)} line {number} unreadable: {exc}") from exc
            entries.append(entry)
        return entries

    def read(self, trail_id: str) -> list[dict[str, Any]]:
        """Every entry, in file order. A torn or unreadable line is an error, never skipped."""
        try:
            data = self.path(trail_id).read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise WitnessUnavailable(f"file witness {self.path(trail_id)}: {exc}") from exc
        if data and not data.endswith(b"\n"):
            raise WitnessUnavailable(f"file witness {self.path(trail_id)} ends in a torn line")
        return self._parse(data.split(b"\n"), trail_id, first_line=1)

    def head(self, trail_id: str) -> dict[str, Any] | None:
        """The entry with the highest seal number among the file's last lines (no full read every 10 s)."""
        try:
            with open(self.path(trail_id), "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                start = max(0, size - TAIL_BYTES)
                handle.seek(start)
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise WitnessUnavailable(f"file witness {self.path(trail_id)}: {exc}") from exc
        if data and not data.endswith(b"\n"):
            raise WitnessUnavailable(f"file witness {self.path(trail_id)} ends in a torn line")
        lines = data.split(b"\n")
        if start > 0:
            lines = lines[1:]  # the first line of the window may be cut
        entries = self._parse(lines, trail_id, first_line=0)
        return max(entries, key=lambda e: e["number"]) if entries else None


class SyslogWitness:
    """One syslog message per seal (LOG_AUTH), for a log store the database's owner cannot edit. Write-only."""

    name = "syslog"
    readable = False

    def __init__(self, address: str) -> None:
        host, sep, port = address.rpartition(":")
        self.address: str | tuple[str, int] = (host, int(port)) if sep and port.isdigit() else address

    def write(self, entries: Sequence[dict[str, Any]], trail_id: str) -> None:
        try:
            handler = logging.handlers.SysLogHandler(
                address=self.address, facility=logging.handlers.SysLogHandler.LOG_AUTH
            )
        except OSError as exc:
            raise WitnessUnavailable(f"syslog witness {self.address}: {exc}") from exc
        try:
            for entry in entries:
                record = logging.LogRecord(
                    "itirp.audit.witness",
                    logging.INFO,
                    __file__,
                    0,
                    "itirp-audit-witness %s",
                    (canonical_json(entry),),
                    None,
                )
                handler.emit(record)
        finally:
            handler.close()


def witnesses() -> list[Witness]:
    """The witnesses named by AUDIT_WITNESS, in order; an unknown name is a configuration error."""
    names = settings.AUDIT_WITNESS
    if isinstance(names, str):
        names = names.split(",")
    found: list[Witness] = []
    for name in (n.strip().lower() for n in names):
        if name in ("", "none"):
            continue
        if name == "file":
            found.append(FileWitness(Path(settings.AUDIT_WITNESS_DIR)))
        elif name == "syslog":
            found.append(SyslogWitness(settings.AUDIT_WITNESS_SYSLOG_ADDRESS))
        else:
            # "s3" (object lock, WORM) is not built: no S3 server could be run to test it here.
            raise ImproperlyConfigured(f"AUDIT_WITNESS: unknown witness {name!r} (known: file, syslog, none)")
    return found


def readable_witness() -> FileWitness | None:
    """The witness verification reads (the first readable one named), or None."""
    return next((w for w in witnesses() if isinstance(w, FileWitness)), None)


def witness_write(seals: Sequence[Seal], trail_id: str) -> None:
    """Write these seals to every witness; the first that fails raises WitnessUnavailable."""
    entries = [entry_of(seal, trail_id) for seal in seals]
    for witness in witnesses():
        witness.write(entries, trail_id)


def witness_after_commit(seal: Seal, trail_id: str) -> None:
    """Run by the seal's on_commit: a failure here is logged; the next sealer writes what is missing."""
    try:
        witness_write([seal], trail_id)
    except WitnessUnavailable:
        logger.exception("audit witness write failed for seal %s; the next seal run retries it", seal.number)
