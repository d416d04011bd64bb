"""Shared fixtures: users of each role, authenticated API clients, and database plumbing for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db.backends.signals import connection_created
from rest_framework.test import APIClient

from accounts import authentication
from books import directory
from market import directory as instruments


def _allow_truncate(sender: Any, connection: Any, **kwargs: Any) -> None:
    # Transactional tests reset the database with TRUNCATE, which the event table refuses unless the
    # session says so (audit/migrations/0002). Only the test suite says so.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET itirp.allow_truncate = 'on'")


connection_created.connect(_allow_truncate, dispatch_uid="tests.allow_truncate")

PASSWORDS = {
    "TRADER": "trader-pass-1",
    "RISK_MANAGER": "risk-pass-1",
    "COMPLIANCE": "compl-pass-1",
    "ADMIN": "admin-pass-1",
    "MARKET_DATA": "feed-pass-1",
}


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Throttle counters and lockouts live in the cache; every test starts without them."""
    try:
        cache.clear()
    except Exception:  # noqa: BLE001 - a test about a cache outage may have broken it on purpose
        pass
    # Books are cached per process by id and code; a flushed database makes them anew with other ids.
    directory.forget()
    instruments.forget()
    authentication.forget_last_read()


@pytest.fixture(autouse=True)
def _market(request: pytest.FixtureRequest) -> bool:
    """Tests that use the database trade in a listed, freshly priced market (tests/support/market.py).
    True when it was listed (a directory's conftest may override this fixture to set its own prices)."""
    uses_db = {"db", "transactional_db", "live_server"} & set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if (not uses_db and marker is None) or request.node.get_closest_marker("empty_market"):
        return False
    transactional = bool(uses_db - {"db"}) or bool(
        marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    from tests.support.market import list_instruments

    list_instruments()
    return True


@pytest.fixture
def _purge_queue() -> Any:
    """Approved orders queue execution tasks; where no worker runs, drop them afterwards."""
    yield
    from itirp.celery import app

    try:
        app.control.purge()
    except Exception:  # noqa: BLE001 - a broker that is down has nothing queued to drop
        pass


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    from accounts import services

    def make(username: str, role: str = "TRADER", password: str | None = None, **kwargs: Any) -> Any:
        return services.user_create(
            actor=None, username=username, password=password or PASSWORDS[role], role=role, **kwargs
        )

    return make


@pytest.fixture
def trader(make_user: Callable[..., Any]) -> Any:
    return make_user("trader1", "TRADER")


@pytest.fixture
def trader2(make_user: Callable[..., Any]) -> Any:
    return make_user("trader2", "TRADER")


@pytest.fixture
def risk_manager(make_user: Callable[..., Any]) -> Any:
    return make_user("risk1", "RISK_MANAGER")


@pytest.fixture
def compliance(make_user: Callable[..., Any]) -> Any:
    return make_user("compliance1", "COMPLIANCE")


@pytest.fixture
def admin_user(make_user: Callable[..., Any]) -> Any:
    return make_user("admin", "ADMIN", is_superuser=True)


def login(client: APIClient, username: str, password: str) -> dict[str, Any]:
    response = client.post("/api/v1/auth/login", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for(db: Any) -> Callable[[Any], APIClient]:
    """An API client carrying a real access token obtained through /auth/login for the user."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        tokens = login(client, user.username, PASSWORDS[user.role])
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
        client.tokens = tokens  # type: ignore[attr-defined]
        return client

    return make
