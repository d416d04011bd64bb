#!/usr/bin/env python3
"""Check an ITIRP audit export (manage.py export_audit) offline. Python 3.11+ standard library only.

    python3 verify_audit_export.py export.jsonl [--key-file seal.key] [--expect-seal NUMBER:HASH]

Checks: every line is canonical JSON; header first, footer last with the right counts and the sha256
of all bytes before it; every event's content hash; every seal's chain (each member's chain hash, the
batch hash, the seal hash) and that consecutive seals link; each seal covers exactly its range minus
its recorded gaps; exported events lie in the header's time range. With --key-file, the seals' HMAC
signatures too. The first seal's previous hash is where the file's chain starts: compare it (or any
seal hash) with a value kept elsewhere, e.g. with --expect-seal. Exit status 0 when everything holds.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
from datetime import datetime
from typing import Any

FORMAT = "itirp-audit-export/1"
SEAL_FIELDS = (
    "number",
    "first_sequence",
    "last_sequence",
    "event_count",
    "gaps",
    "batch_hash",
    "previous_hash",
    "sealed_at",
)


class Invalid(Exception):
    pass


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_step(previous: str, content: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + bytes.fromhex(content)).hexdigest()


def expected_sequences(first: int, last: int, gaps: list[list[int]]) -> list[int]:
    wanted, current = [], first
    for start, end in sorted((int(a), int(b)) for a, b in gaps):
        wanted.extend(range(current, start))
        current = max(current, end + 1)
    wanted.extend(range(current, last + 1))
    return wanted


def _parse(data: bytes) -> list[dict[str, Any]]:
    if not data.endswith(b"\n"):
        raise Invalid("the file does not end with a newline: truncated?")
    lines = []
    digest = hashlib.sha256()
    raw_lines = data[:-1].split(b"\n")
    for number, raw in enumerate(raw_lines, 1):
        try:
            text = raw.decode("utf-8")
            obj = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Invalid(f"line {number}: not JSON ({exc})") from None
        if not isinstance(obj, dict) or canonical(obj) != text:
            raise Invalid(f"line {number}: not in canonical form (was it edited?)")
        obj["_line"], obj["_digest_before"] = number, digest.hexdigest()
        digest.update(raw + b"\n")
        lines.append(obj)
    return lines


def _is_member(line: dict[str, Any]) -> bool:
    return line.get("type") == "hash" or (line.get("type") == "event" and line.get("chain_hash") is not None)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Checker:
    def __init__(self, key: bytes | None) -> None:
        self.key = key
        self.seals = self.events = self.hashes = self.unsealed = 0
        self.first_previous: str | None = None
        self.seal_hashes: dict[int, str] = {}

    def run(self, lines: list[dict[str, Any]]) -> None:
        if len(lines) < 2 or lines[0].get("type") != "header" or lines[-1].get("type") != "footer":
            raise Invalid("a header line first and a footer line last are required")
        header, footer = lines[0], lines[-1]
        if header.get("format") != FORMAT:
            raise Invalid(f"unknown format {header.get('format')!r}")
        since, until = _time(header["since"]), _time(header["until"])
        previous_seal: dict[str, Any] | None = None
        unsealed_seen = False
        body, i = lines[1:-1], 0
        while i < len(body):
            line = body[i]
            kind = line.get("type")
            if kind == "seal":
                if unsealed_seen:
                    raise Invalid(f"line {line['_line']}: a seal after unsealed events")
                members = []
                i += 1
                while i < len(body) and _is_member(body[i]):
                    members.append(body[i])
                    i += 1
                self._seal(line, members, previous_seal, since, until)
                previous_seal = line
            elif kind == "event" and line.get("chain_hash") is None:
                self._event(line, since, until)
                if previous_seal is not None and line["sequence"] <= previous_seal["last_sequence"]:
                    raise Invalid(f"line {line['_line']}: unsealed event #{line['sequence']} inside a sealed range")
                unsealed_seen = True
                self.unsealed += 1
                i += 1
            else:
                raise Invalid(f"line {line['_line']}: unexpected {kind!r} line outside a seal")
        self._footer(footer)

    def _event(self, line: dict[str, Any], since: datetime, until: datetime) -> str:
        event = line["event"]
        if event.get("sequence") != line.get("sequence"):
            raise Invalid(f"line {line['_line']}: sequence differs from the event's own")
        digest = sha256(canonical(event))
        if digest != line.get("content_hash"):
            raise Invalid(f"event #{line['sequence']} (line {line['_line']}): content does not match its hash")
        if not since <= _time(event["timestamp"]) < until:
            raise Invalid(f"event #{line['sequence']} (line {line['_line']}): outside the exported time range")
        return digest

    def _seal(
        self,
        seal: dict[str, Any],
        members: list[dict[str, Any]],
        previous: dict[str, Any] | None,
        since: datetime,
        until: datetime,
    ) -> None:
        where = f"seal {seal.get('number')} (line {seal['_line']})"
        fields = {name: seal[name] for name in SEAL_FIELDS}
        if sha256(canonical(fields)) != seal["seal_hash"]:
            raise Invalid(f"{where}: its fields do not match its hash")
        if self.key is not None:
            good = hmac.new(self.key, seal["seal_hash"].encode("ascii"), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(good, seal["signature"]):
                raise Invalid(f"{where}: signature invalid with this key")
        if previous is None:
            self.first_previous = seal["previous_hash"]
        else:
            if seal["number"] != previous["number"] + 1 or seal["previous_hash"] != previous["seal_hash"]:
                raise Invalid(f"{where}: does not chain to seal {previous['number']}")
            if seal["first_sequence"] != previous["last_sequence"] + 1:
                raise Invalid(f"{where}: does not start where seal {previous['number']} ends")
        wanted = expected_sequences(seal["first_sequence"], seal["last_sequence"], seal["gaps"])
        got = [m["sequence"] for m in members]
        if got != wanted or len(wanted) != seal["event_count"]:
            missing = sorted(set(wanted) - set(got))
            extra = sorted(set(got) - set(wanted))
            raise Invalid(f"{where}: members differ from its range (missing {missing[:5]}, extra {extra[:5]})")
        chain = seal["previous_hash"]
        for member in members:
            if member["type"] == "event":
                digest = self._event(member, since, until)
                self.events += 1
            else:
                digest = member["content_hash"]
                self.hashes += 1
            chain = chain_step(chain, digest)
            if chain != member["chain_hash"]:
                raise Invalid(f"event #{member['sequence']} (line {member['_line']}): chain hash does not match")
        if chain != seal["batch_hash"]:
            raise Invalid(f"{where}: batch hash does not match its members")
        self.seals += 1
        self.seal_hashes[seal["number"]] = seal["seal_hash"]

    def _footer(self, footer: dict[str, Any]) -> None:
        expected = {
            "type": "footer",
            "lines": footer["_line"] - 1,
            "events": self.events,
            "seals": self.seals,
            "unsealed": self.unsealed,
            "sha256": footer["_digest_before"],
        }
        actual = {k: v for k, v in footer.items() if not k.startswith("_")}
        if actual != expected:
            raise Invalid("the footer does not match the file (lines removed, added or changed)")


def check(data: bytes, *, key: bytes | None = None, expect: list[str] | None = None) -> Checker:
    """Raise Invalid at the first problem; return the checker with its counts when the file holds."""
    checker = Checker(key)
    checker.run(_parse(data))
    for text in expect or []:
        number, _, digest = text.partition(":")
        if checker.seal_hashes.get(int(number)) != digest.lower():
            raise Invalid(f"seal {number} in the file is not {digest}")
    return checker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export")
    parser.add_argument("--key-file", help="file holding the seal key (AUDIT_SEAL_KEY) to check signatures")
    parser.add_argument("--expect-seal", action="append", default=[], metavar="NUMBER:HASH")
    args = parser.parse_args(argv)
    with open(args.export, "rb") as handle:
        data = handle.read()
    key = None
    if args.key_file:
        with open(args.key_file, "rb") as handle:
            key = handle.read().rstrip(b"\r\n")
    try:
        checker = check(data, key=key, expect=args.expect_seal)
    except (Invalid, KeyError, TypeError, ValueError) as exc:
        print(f"FAILED: {exc}")
        return 1
    print(
        f"OK: {checker.events} events and {checker.hashes} hashes in {checker.seals} seals verified; "
        f"{checker.unsealed} unsealed events (content hashes only); chain starts at {checker.first_previous}"
        + ("; signatures checked" if key is not None else "; signatures not checked (no --key-file)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
