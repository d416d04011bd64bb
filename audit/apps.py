"""Audit app: the append-only event store."""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from audit import schedules  # noqa: PLC0415 - models are loaded only once apps are ready

        schedules.signals_connect()
