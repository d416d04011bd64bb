"""Celery beat's scheduler (CELERY_BEAT_SCHEDULER): django-celery-beat's DatabaseScheduler that waits for the
database at start instead of exiting.

The schedule lives in the database, and DatabaseScheduler reads and writes it while beat starts (the periodic
tasks of CELERY_BEAT_SCHEDULE saved, the enabled ones read). A database that is down or not yet migrated
then is an exception out of beat's start, and beat exits ("beat raised exception OperationalError"): in
docker-compose it crash-loops until the database is back, under `make run` (tools/supervise.py) it is
started again after a growing delay, and a beat started a moment before an outage is simply gone. Once
running, beat already lives through an outage (a tick that fails is logged and the next one tried), so
only the start waits here: it retries with a growing delay (at most START_RETRY_MAX_SECONDS), a WARNING
line each time, and says "schedule read from the database" when it is; beat's ticks start after that.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, connection
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger("itirp.beat")

START_RETRY_FIRST_SECONDS = 0.5
START_RETRY_MAX_SECONDS = 10.0


class PatientDatabaseScheduler(DatabaseScheduler):
    """DatabaseScheduler whose start waits for the database (module docstring)."""

    def setup_schedule(self) -> None:
        delay = START_RETRY_FIRST_SECONDS
        attempt = 1
        while True:
            try:
                super().setup_schedule()
            except DatabaseError as exc:
                logger.warning(
                    "database unavailable at beat's start (%s: %s): trying again in %.1f s (attempt %d)",
                    type(exc).__name__,
                    str(exc).strip(),
                    delay,
                    attempt,
                )
                # The read that failed had begun the first read of the schedule: make the next try begin it again,
                # on a new connection.
                self._initial_read, self._schedule = True, None
                connection.close()
                time.sleep(delay)
                delay, attempt = min(delay * 2, START_RETRY_MAX_SECONDS), attempt + 1
                continue
            logger.info(
                "beat: schedule read from the database (%d entries, attempt %d)", len(self._schedule or {}), attempt
            )
            return
