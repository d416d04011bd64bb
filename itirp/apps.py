"""The project's own app config: registers ITIRP's system checks (itirp/checks.py)."""

from django.apps import AppConfig
from django.core import checks


class ItirpConfig(AppConfig):
    name = "itirp"
    verbose_name = "ITIRP"

    def ready(self) -> None:
        from itirp import checks as itirp_checks

        for check in itirp_checks.CHECKS:
            checks.register(check, "itirp")
