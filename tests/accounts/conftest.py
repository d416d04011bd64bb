"""Fixtures for the accounts tests: token decoding and forging with the real (or a wrong) key, event counts."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from audit.models import Event

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
PROTECTED = "/api/v1/orders"  # any endpoint a trader may call: GET /orders


def signing_key() -> str:
    return settings.SIMPLE_JWT["SIGNING_KEY"]


def decode(token: str) -> dict[str, Any]:
    """Verify and decode a token the way a client holding the key would."""
    return jwt.decode(token, signing_key(), algorithms=["HS256"])


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def events(event_type: str, **filters: Any) -> int:
    return Event.objects.filter(event_type=event_type, **filters).count()


@pytest.fixture
def count_events() -> Callable[..., int]:
    return events
