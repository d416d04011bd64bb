"""The alert evaluator process: reads new audit events every ALERTS_POLL_SECONDS, limit usage and price ages
every ALERTS_CHECK_SECONDS, and raises alerts (alerts.services.Evaluator). One runs at a time (the cursor row's
lock); a second one waits its turn."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from alerts.services import Evaluator

logger = logging.getLogger("itirp.alerts")


class Command(BaseCommand):
    help = "Evaluate alert rules continuously over the audit trail (Procfile: alerts)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="one pass of events and checks, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = False

        def _stop(*_: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        evaluator = Evaluator()
        next_check = 0.0
        while not stop:
            started = time.monotonic()
            try:
                raised = evaluator.run_events()
                if started >= next_check:
                    next_check = started + settings.ALERTS_CHECK_SECONDS
                    raised += evaluator.run_checks()
                for alert in raised:
                    logger.info("alert raised: %s %s %s", alert.severity, alert.kind, alert.scope)
            except Exception:  # noqa: BLE001 - a bad pass (database restarting) is retried on the next tick
                logger.exception("alerts: evaluation pass failed")
                close_old_connections()
            if options["once"]:
                return
            time.sleep(max(settings.ALERTS_POLL_SECONDS - (time.monotonic() - started), 0.01))
