"""schemathesis against the served OpenAPI schema (/api/schema/): every operation, authenticated as each role,
with a bounded number of generated requests (FUZZ_EXAMPLES, default 25 per operation and role).

Each answer must be no 5xx, a status code the schema documents for the operation, the documented content type,
and a body that conforms to the documented schema of that status.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
USERNAMES = {"TRADER": "trader1", "RISK_MANAGER": "risk1", "COMPLIANCE": "compliance1", "ADMIN": "admin"}


@pytest.fixture
def wsgi_app(tokens: dict[str, str]) -> Any:
    # As Django's test client does: a request must not close the test's database connection (its transaction).
    # After the logins (`tokens`): the test client reconnects the handler after each of its own requests.
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def served_schema(wsgi_app: Any) -> Any:
    return schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)


@pytest.fixture
def tokens(make_user: Any, client_for: Any) -> dict[str, str]:
    out = {}
    for role, username in USERNAMES.items():
        user = make_user(username, role, is_superuser=(role == "ADMIN"))
        out[role] = client_for(user).tokens["access_token"]
    return out


@pytest.fixture(autouse=True)
def _roomy_throttles(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fuzzer logs in and submits faster than the production rates; throttling has its own tests.
    from accounts import apis as account_apis
    from orders import apis as order_apis

    monkeypatch.setattr(order_apis.OrderSubmitThrottle, "THROTTLE_RATES", {"orders": "100000/min"})
    monkeypatch.setattr(account_apis.LoginThrottle, "THROTTLE_RATES", {"login": "100000/min"})


def test_every_operation_answers_as_documented(served_schema: Any, tokens: dict[str, str]) -> None:
    # The alerts stream is a server-sent event stream held open for up to ALERTS_STREAM_SECONDS: a fuzzer reads
    # each answer to its end, so its timing varies with the machine and Hypothesis calls it flaky. Its own tests
    # (tests/alerts) cover it, bad parameters included.
    operations = [
        op
        for op in (result.ok() for result in served_schema.get_all_operations())
        if not op.path.rstrip("/").endswith("/alerts/stream")
    ]
    assert len(operations) >= 15, [op.label for op in operations]
    calls: dict[str, int] = {}
    failures: list[str] = []

    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def exercise(case: Any) -> None:
            label = case.operation.label
            # The same generated request from each role in turn (a 403 is documented; a 5xx never is).
            for role in USERNAMES:
                headers = {"Authorization": f"Bearer {tokens[role]}"}
                if "/health" in case.operation.path:
                    # API.md: health answers 503 "degraded" when a component is down (here: no worker runs).
                    response = case.call_and_validate(headers=headers, checks=CHECKS[1:])
                    assert response.status_code in (200, 503) and response.json()["status"] in ("healthy", "degraded")
                else:
                    case.call_and_validate(headers=headers, checks=CHECKS)
                calls[label] = calls.get(label, 0) + 1

        try:
            exercise()
        except Exception as exc:  # noqa: BLE001 - every operation is fuzzed; all failures reported together
            failures.append(f"{operation.label}: {exc}")
    print(f"\n[hardening] fuzz: {len(operations)} operations, {sum(calls.values())} requests, {calls}")
    assert not failures, "\n\n".join(failures)
    assert set(calls) == {op.label for op in operations}
