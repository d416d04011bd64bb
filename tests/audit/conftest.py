"""Fixtures of the audit integrity tests: recording events, sealing at once (witnessed as in production),
tampering as a superuser; each test has a witness directory of its own and leaves no integrity alarm."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import override_settings

from audit import integrity
from audit.integrity.alarm import alarm_clear
from audit.models import Event, EventType
from audit.services import event_record


@pytest.fixture(autouse=True)
def witness_dir(tmp_path: Path) -> Iterator[Path]:
    """The test database is reused, its seals rolled back: one test's witness must not judge the next's."""
    folder = tmp_path / "witness"
    with override_settings(AUDIT_WITNESS=["file"], AUDIT_WITNESS_DIR=folder):
        yield folder
    alarm_clear()


@pytest.fixture
def record(db: Any) -> Callable[..., Event]:
    def make(n: int = 1, event_type: str = EventType.LOGIN_FAILED, **payload: Any) -> list[Event]:
        events = []
        for i in range(n):
            with transaction.atomic():
                events.append(event_record(event_type=event_type, payload={"i": i, **payload}))
        return events

    return make


@pytest.fixture
def seal(django_capture_on_commit_callbacks: Any) -> Callable[[], list[Any]]:
    """Seal everything now: no settle time, no waiting for open transactions; each seal's witness write
    runs as it would on commit (the test's own transaction never commits)."""

    def run() -> list[Any]:
        with django_capture_on_commit_callbacks(execute=True):
            return integrity.seal_pending(settle_seconds=0, gap_wait_seconds=0)

    return run


def tamper(*statements: str, params: list[Any] | None = None, how: str = "replica") -> None:
    """Run SQL as the superuser with the append-only triggers switched off, as an intruder would."""
    with connection.cursor() as cursor:
        if how == "replica":
            cursor.execute("SET LOCAL session_replication_role = replica")
        else:
            cursor.execute("ALTER TABLE audit_event DISABLE TRIGGER ALL")
        for sql in statements:
            cursor.execute(sql, params)
        if how == "replica":
            cursor.execute("SET LOCAL session_replication_role = origin")
        else:
            cursor.execute("ALTER TABLE audit_event ENABLE TRIGGER ALL")


def legacy_numbering() -> None:
    """As a database migrated before events were numbered gaplessly (audit/migrations/0006): every sequence
    counts as one from the sequence object, where a rollback left a gap. Rolled back with the test."""
    tamper("UPDATE audit_sequence_counter SET gapless_from = 9223372036854775807")


def legacy_gap() -> None:
    """The next number skipped, as a rolled-back transaction did under the sequence object. The number is
    also skipped in this transaction's own count (the counter's transaction-local setting)."""
    tamper(
        "UPDATE audit_sequence_counter SET last = last + 1",
        "SELECT set_config('itirp.event_sequence', last::text, true) FROM audit_sequence_counter WHERE id = 1",
    )
