"""Fixtures of the audit integrity tests: recording events, sealing at once, tampering as a superuser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from audit import integrity
from audit.models import Event, EventType
from audit.services import event_record


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
def seal() -> Callable[[], list[Any]]:
    """Seal everything now: no settle time, no waiting for open transactions."""
    return lambda: integrity.seal_pending(settle_seconds=0, gap_wait_seconds=0)


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
