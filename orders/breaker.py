"""Circuit breaker around venue calls, shared by every worker process (to be completed by the execution work)."""

from __future__ import annotations

from typing import Any


def breaker_snapshot() -> dict[str, Any]:
    raise NotImplementedError
