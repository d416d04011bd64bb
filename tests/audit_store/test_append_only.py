"""The event table is append-only in PostgreSQL itself: UPDATE, DELETE and TRUNCATE are refused."""

from __future__ import annotations

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import Event, EventType
from audit.services import event_record

pytestmark = pytest.mark.postgres


def _one_event() -> Event:
    with transaction.atomic():
        return event_record(event_type=EventType.LIMITS_CHANGED, payload={"old": 1, "new": 2})


def _refused(sql: str, params: list | None = None) -> str:
    with pytest.raises(DatabaseError) as info:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params or [])
    return str(info.value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_event SET payload = '{}'::jsonb WHERE sequence = %s",
        "UPDATE audit_event SET event_type = 'LOGIN_FAILED'",
        "DELETE FROM audit_event WHERE sequence = %s",
        "DELETE FROM audit_event",
    ],
)
def test_event_when_raw_sql_update_or_delete_then_database_refuses(sql: str) -> None:
    event = _one_event()
    message = _refused(sql, [event.sequence] if "%s" in sql else None)
    assert "pgtrigger: Cannot" in message and "audit_event" in message
    stored = Event.objects.get(sequence=event.sequence)
    assert (stored.event_type, stored.payload) == ("LIMITS_CHANGED", {"old": 1, "new": 2})


@pytest.mark.django_db
def test_event_when_orm_update_or_delete_then_database_refuses() -> None:
    event = _one_event()
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.filter(pk=event.pk).update(payload={})
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.filter(pk=event.pk).delete()
    assert Event.objects.filter(pk=event.pk, payload={"old": 1, "new": 2}).exists()


@pytest.mark.django_db
def test_event_when_truncate_in_a_session_that_switched_the_setting_off_then_refused() -> None:
    _one_event()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL itirp.allow_truncate = 'off'")
        with pytest.raises(DatabaseError) as info, transaction.atomic():
            cursor.execute("TRUNCATE audit_event")
    assert "append-only: TRUNCATE refused" in str(info.value)
    assert Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_event_when_truncate_from_a_session_without_the_test_setting_then_refused() -> None:
    # A fresh session made outside Django (so the tests' connection_created hook never ran): what any
    # production connection looks like.
    _one_event()
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"] or "postgres",
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    ) as raw:
        raw.execute("SET lock_timeout = '10s'")
        assert raw.execute("SELECT current_setting('itirp.allow_truncate', true)").fetchone()[0] in (None, "")
        for sql in ("TRUNCATE audit_event", "TRUNCATE audit_event RESTART IDENTITY CASCADE"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only: TRUNCATE refused"):
                raw.execute(sql)
        with pytest.raises(psycopg.Error):
            raw.execute("DELETE FROM audit_event")
        with pytest.raises(psycopg.Error):
            raw.execute("UPDATE audit_event SET symbol = 'X'")
        assert raw.execute("SELECT count(*) FROM audit_event").fetchone()[0] >= 1


@pytest.mark.django_db(transaction=True)
def test_event_when_recorded_outside_a_transaction_then_refused() -> None:
    # events_record must share the transaction of the change it records; in autocommit it refuses
    from audit.services import events_record

    with pytest.raises(RuntimeError, match="inside the transaction"):
        events_record(specs=[])
