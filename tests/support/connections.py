"""The database connection as the tests of round trips and health checks watch it (core.sql)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from core import sql


def as_a_new_request() -> None:
    """What Django does to a persistent connection when a request (or a Celery task) begins: its health is to
    be checked again before its first statement (BaseDatabaseWrapper.close_if_unusable_or_obsolete)."""
    db: Any = connections[DEFAULT_DB_ALIAS]
    db.health_check_done = False


def server_ends(pid: int) -> None:
    """The server ends the backend `pid`, as a restart of PostgreSQL would, from another connection."""
    params = connections[DEFAULT_DB_ALIAS].get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)


def health_checks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every `SELECT 1` Django's health check asks of the (now open) default connection, as it is asked."""
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    asked: list[bool] = []
    usable = db.is_usable

    def counted() -> bool:
        asked.append(True)
        return usable()

    monkeypatch.setattr(db, "is_usable", counted)
    return asked


def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The statements of each round trip core.sql makes to PostgreSQL from now on, in order."""
    made: list[list[str]] = []
    real = sql.pipelined

    def counted(statements: Any) -> Any:
        made.append([text for text, _ in statements])
        return real(statements)

    monkeypatch.setattr(sql, "pipelined", counted)
    return made
