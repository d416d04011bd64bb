"""System checks of ITIRP settings that involve more than one setting (registered by itirp.apps.ItirpConfig).

`manage.py check`, `migrate` (make run, the compose migrate service) and every other management command
run them, and stop on an Error. A missing SECRET_KEY is refused earlier, by itirp/settings.py itself: the
settings read the key while they load, and the web server and Celery never run system checks.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from analytics.engine import DISTRIBUTIONS, METHODS


def broker_visibility_timeout_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A message is redelivered only after the visibility timeout: it must outlast one attempt and the longest
    retry countdown, or a slow task would run twice at once (harmless here, but wasteful)."""
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    if timeout is None:  # the filesystem transport has no visibility timeout
        return []
    longest = (
        settings.VENUE_TIMEOUT_SECONDS
        + max(settings.EXECUTION_RETRY_BACKOFF_SECONDS, default=0)
        + settings.CELERY_TASK_TIME_LIMIT
    )
    if timeout > longest:
        return []
    return [
        Error(
            "CELERY_VISIBILITY_TIMEOUT must exceed the venue timeout + longest backoff + task limit",
            hint=f"CELERY_VISIBILITY_TIMEOUT is {timeout}; set it above {longest:g} seconds.",
            id="itirp.E001",
        )
    ]


def metrics_networks_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every METRICS_ALLOWED_NETWORKS entry is a network; a typo would otherwise fail every scrape."""
    errors: list[CheckMessage] = []
    for network in settings.METRICS_ALLOWED_NETWORKS:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            errors.append(
                Error(
                    f"METRICS_ALLOWED_NETWORKS: {network!r} is not a network ({exc})",
                    hint="A comma-separated list of CIDR networks, e.g. 10.0.0.0/8,127.0.0.1/32.",
                    id="itirp.E002",
                )
            )
    return errors


def analytics_settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The scheduled VaR run's method, confidence and horizon, and the Monte Carlo distribution, are ones the
    API would accept: a typo would otherwise fail every run (and leave every VaR limit unwatched) silently."""
    problems = []
    if settings.ANALYTICS_LIMIT_METHOD not in METHODS:
        problems.append(f"ANALYTICS_LIMIT_METHOD must be one of {', '.join(METHODS)}")
    if not 0.5 < settings.ANALYTICS_LIMIT_CONFIDENCE < 0.9999:
        problems.append("ANALYTICS_LIMIT_CONFIDENCE must be strictly between 0.5 and 0.9999")
    if not 1 <= settings.ANALYTICS_LIMIT_HORIZON_DAYS <= 250:
        problems.append("ANALYTICS_LIMIT_HORIZON_DAYS must be between 1 and 250")
    if settings.ANALYTICS_MC_DISTRIBUTION not in DISTRIBUTIONS:
        problems.append(f"ANALYTICS_MC_DISTRIBUTION must be one of {', '.join(DISTRIBUTIONS)}")
    if settings.ANALYTICS_MC_PATHS < 100 or settings.ANALYTICS_LOOKBACK_DAYS < 20:
        problems.append("ANALYTICS_MC_PATHS must be at least 100 and ANALYTICS_LOOKBACK_DAYS at least 20")
    return [Error(p, id="itirp.E003") for p in problems]


CHECKS = (broker_visibility_timeout_check, metrics_networks_check, analytics_settings_check)
