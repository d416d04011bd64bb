"""A Celery worker keeps its database connection from task to task (Celery's Django fixup closes it before and
after every task unless CELERY_DB_REUSE_MAX is set), and applies Django's rules for persistent connections
before each task, as Django does before each request."""

from __future__ import annotations

import time

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from itirp.celery import _database_connections_checked, app

pytestmark = pytest.mark.django_db(transaction=True)


def test_worker_when_tasks_run_one_after_another_then_the_connection_is_kept():
    fixup = DjangoWorkerFixup(app)
    connection.ensure_connection()
    opened = connection.connection
    for _ in range(10):  # what the fixup does around five tasks: before and after each
        fixup.close_database()
    assert fixup.db_reuse_max >= 100
    assert connection.connection is opened


@pytest.mark.postgres  # an in-memory SQLite test database is never closed by Django
def test_worker_when_the_connection_outlived_conn_max_age_then_closed_before_the_next_task():
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1  # older than CONN_MAX_AGE
    _database_connections_checked()
    assert connection.connection is None
    with connection.cursor() as cursor:  # the next query opens a new one
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.postgres
@pytest.mark.django_db  # the test's own transaction stands for the caller's
def test_worker_when_a_task_runs_eagerly_in_its_callers_transaction_then_the_connection_is_left_alone():
    from types import SimpleNamespace

    connection.ensure_connection()
    opened = connection.connection
    _database_connections_checked(task=SimpleNamespace(request=SimpleNamespace(is_eager=True)))
    assert connection.connection is opened and connection.in_atomic_block
