"""export_audit writes JSON lines that tools/verify_audit_export.py (stdlib only) checks offline; a change
of any one byte makes the check fail. The export is itself an AUDIT_EXPORTED event."""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from audit.models import Event, EventType

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_audit_export.py"
_spec = importlib.util.spec_from_file_location("verify_audit_export", TOOL)
verifier = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verifier)  # type: ignore[union-attr]


def _export(tmp_path: Path, *extra: str, since: str = "2000-01-01", until: str = "2100-01-01") -> bytes:
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", f"--since={since}", f"--until={until}", f"--out={out}", *extra)
    return out.read_bytes()


def test_export_verifies_offline_and_is_recorded(record: Any, seal: Any, tmp_path: Path, compliance: Any) -> None:
    record(4, username="ü-ñ")  # non-ASCII text must hash the same offline
    seal()
    record(2)
    seal()
    record(1)  # newer than the last seal: exported as unsealed
    data = _export(tmp_path, "--no-seal", f"--actor={compliance.username}")
    checker = verifier.check(data, key=settings.AUDIT_SEAL_KEY.encode())
    sealed_before = Event.objects.filter(event_type=EventType.LOGIN_FAILED).count() - 1
    assert (checker.seals, checker.unsealed) == (2, 1)
    assert checker.events >= sealed_before  # plus the USER_CREATED of the fixture
    exported = Event.objects.filter(event_type=EventType.AUDIT_EXPORTED).get()
    assert exported.actor_username == compliance.username
    assert exported.payload["seals"] == 2 and exported.payload["unsealed"] == 1
    assert exported.payload["sha256"] == data.splitlines()[-1].decode().split('"sha256":"')[1][:64]
    result = subprocess.run(
        [sys.executable, "-I", str(TOOL), str(tmp_path / "audit.jsonl")], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("OK:"), result.stdout + result.stderr


def test_one_changed_byte_anywhere_fails(record: Any, seal: Any, tmp_path: Path) -> None:
    record(3)
    seal()
    data = _export(tmp_path, "--no-seal")
    verifier.check(data)
    undetected = []
    for index in range(len(data)):
        changed = bytearray(data)
        changed[index] ^= 0x01
        try:
            verifier.check(bytes(changed))
        except (verifier.Invalid, KeyError, TypeError, ValueError):
            continue
        undetected.append(index)
    assert undetected == []


def test_a_time_window_exports_neighbours_as_hashes(record: Any, seal: Any, tmp_path: Path) -> None:
    events = record(5)
    seal()
    middle = events[2].timestamp
    data = _export(
        tmp_path, "--no-seal", since=middle.isoformat(), until=(middle + dt.timedelta(microseconds=1)).isoformat()
    )
    checker = verifier.check(data)
    assert checker.events == 1 and checker.hashes >= 4
    lines = data.decode().splitlines()
    assert sum('"type":"event"' in line for line in lines) == 1


def test_wrong_key_and_wrong_anchor_fail(record: Any, seal: Any, tmp_path: Path) -> None:
    record(2)
    (only,) = seal()
    data = _export(tmp_path, "--no-seal")
    verifier.check(data, expect=[f"{only.number}:{only.seal_hash}"])
    with pytest.raises(verifier.Invalid, match="signature"):
        verifier.check(data, key=b"not the seal key")
    with pytest.raises(verifier.Invalid):
        verifier.check(data, expect=[f"{only.number}:{'f' * 64}"])


def test_dropped_event_line_fails(record: Any, seal: Any, tmp_path: Path) -> None:
    record(3)
    seal()
    lines = _export(tmp_path, "--no-seal").split(b"\n")
    event_line = next(i for i, line in enumerate(lines) if b'"type":"event"' in line)
    with pytest.raises(verifier.Invalid):
        verifier.check(b"\n".join(lines[:event_line] + lines[event_line + 1 :]))
