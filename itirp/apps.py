"""The project's own app config: registers ITIRP's system checks (itirp/checks.py) and reads PostgreSQL's
timestamps in C (core.sql.fast_timestamps)."""

from django.apps import AppConfig
from django.core import checks
from django.db.backends.signals import connection_created


class ItirpConfig(AppConfig):
    name = "itirp"
    verbose_name = "ITIRP"

    def ready(self) -> None:
        from core.sql import fast_timestamps
        from itirp import checks as itirp_checks

        connection_created.connect(fast_timestamps, dispatch_uid="core.sql.fast_timestamps")

        for check in itirp_checks.CHECKS:
            checks.register(check, "itirp")
