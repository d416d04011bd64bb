"""Brute-force protection: a username locked after LOGIN_FAILURE_LIMIT failures, and a per-address throttle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from accounts import apis
from accounts.models import User
from tests.accounts.conftest import LOGIN, PROTECTED, bearer, events
from tests.conftest import PASSWORDS

pytestmark = pytest.mark.django_db

ADDRESS = "10.20.30.40"


def _attempt(username: str, password: str, address: str = ADDRESS, **extra: str) -> object:
    return APIClient().post(
        LOGIN, {"username": username, "password": password}, format="json", REMOTE_ADDR=address, **extra
    )


def _fail_until_locked(username: str) -> list[int]:
    return [_attempt(username, f"wrong-{i}").status_code for i in range(settings.AXES_FAILURE_LIMIT)]


def test_username_is_locked_after_the_failure_limit_with_a_clear_429(trader: User) -> None:
    codes = _fail_until_locked("trader1")

    assert codes == [401] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    # Locked: even the right password is refused, with a message saying why and for how long.
    response = _attempt("trader1", PASSWORDS["TRADER"])
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "locked_out"
    assert body["detail"].startswith("Too many failed login attempts for this account: it is locked for 15 minutes.")
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    assert "access_token" not in body
    assert events("LOGIN_FAILED") == settings.AXES_FAILURE_LIMIT
    assert events("LOGIN_LOCKED_OUT") == 2


def test_someone_else_on_the_same_address_still_logs_in(trader: User, trader2: User) -> None:
    _fail_until_locked("trader1")

    response = _attempt("trader2", PASSWORDS["TRADER"])

    assert response.status_code == 200
    assert bearer(response.json()["access_token"]).get(PROTECTED).status_code == 200
    assert _attempt("trader1", PASSWORDS["TRADER"]).status_code == 429


def test_the_locked_user_is_locked_from_every_address(trader: User) -> None:
    _fail_until_locked("trader1")

    assert _attempt("trader1", PASSWORDS["TRADER"], address="192.0.2.1").status_code == 429


def test_the_lock_ends_after_the_cool_off(trader: User) -> None:
    _fail_until_locked("trader1")

    with time_machine.travel(datetime.now(UTC) + settings.AXES_COOLOFF_TIME + settings.AXES_COOLOFF_TIME / 10):
        assert _attempt("trader1", PASSWORDS["TRADER"]).status_code == 200


def test_attempts_while_locked_do_not_extend_the_lock(trader: User) -> None:
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False):
        _fail_until_locked("trader1")
    with time_machine.travel(start + settings.AXES_COOLOFF_TIME * 0.9, tick=False):
        assert _attempt("trader1", "still-guessing").status_code == 429

    with time_machine.travel(start + settings.AXES_COOLOFF_TIME * 1.05, tick=False):
        assert _attempt("trader1", PASSWORDS["TRADER"]).status_code == 200


def test_a_success_before_the_limit_resets_the_count(trader: User) -> None:
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _attempt("trader1", f"wrong-{i}").status_code == 401
    assert _attempt("trader1", PASSWORDS["TRADER"]).status_code == 200

    assert _attempt("trader1", "wrong-again").status_code == 401
    trader.refresh_from_db()
    assert trader.last_login is not None


def test_the_admin_login_is_locked_too_with_the_same_message(trader: User, admin_user: User) -> None:
    _fail_until_locked("admin")

    response = Client().post(
        "/admin/login/?next=/admin/", {"username": "admin", "password": PASSWORDS["ADMIN"]}, REMOTE_ADDR=ADDRESS
    )

    assert response.status_code == 429
    assert "Too many failed login attempts" in response.content.decode()


def test_the_login_throttle_limits_one_address_whatever_the_usernames(
    monkeypatch: pytest.MonkeyPatch, trader: User
) -> None:
    monkeypatch.setattr(apis.LoginThrottle, "rate", "3/min", raising=False)
    for i in range(3):
        assert _attempt(f"guess-{i}", "x").status_code == 401

    throttled = _attempt("trader1", PASSWORDS["TRADER"])
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert "throttled" in throttled.json()["detail"]
    assert int(throttled["Retry-After"]) > 0
    # A forged X-Forwarded-For does not make a fresh address.
    assert _attempt("trader1", PASSWORDS["TRADER"], HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429
    # Another address is not affected.
    assert _attempt("trader1", PASSWORDS["TRADER"], address="10.20.30.41").status_code == 200


def test_the_login_throttle_rate_is_configured() -> None:
    assert apis.LoginThrottle().rate == settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"]
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0
