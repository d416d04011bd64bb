"""The back office's middleware (sessions, the session's user, messages, htmx) passed through on /api/ but for
the paths the back office calls with its session: issue 19's cost per order. The API's answers and the back
office's guards stay as they were."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authentication import SessionAuthentication

from tests.conftest import PASSWORDS

ORDER = {"symbol": "AAPL", "side": "BUY", "quantity": "1", "price": "100"}
BACK_OFFICE_ATTRIBUTES = ("session", "_messages", "htmx")


@pytest.mark.django_db
def test_api_when_order_submitted_then_no_session_messages_or_htmx_are_made(trader: Any, client_for: Any) -> None:
    response = client_for(trader).post("/api/v1/orders", ORDER, format="json")
    assert response.status_code == 200, response.content
    request = response.wsgi_request
    made = [name for name in BACK_OFFICE_ATTRIBUTES if hasattr(request, name)]
    assert made == []
    # DRF set the user the token names; the answer carries no cookie and does not vary by one.
    assert request.user == trader
    assert "Set-Cookie" not in response.headers and "Cookie" not in response.headers.get("Vary", "")
    assert response.headers["X-Frame-Options"] == "DENY"  # the headers every answer carries stay


@pytest.mark.django_db
def test_api_when_only_a_back_office_session_then_401(admin_user: Any) -> None:
    """A signed-in admin's session cookie never authenticated the API, and still does not."""
    browser = Client()
    browser.force_login(admin_user)
    assert browser.get("/admin/").status_code == 200
    response = browser.get("/api/v1/risk/limits")
    assert response.status_code == 401
    assert not hasattr(response.wsgi_request, "session")


@pytest.mark.django_db
def test_back_office_when_page_served_then_session_user_messages_htmx_and_csrf_run(admin_user: Any) -> None:
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/admin/login/")
    assert page.status_code == 200
    request = page.wsgi_request
    assert all(hasattr(request, name) for name in ("session", "_messages", "htmx", "user"))
    assert "csrftoken" in page.cookies
    # CSRF still guards the back office: a sign-in without the token is refused, with it accepted.
    form = {"username": admin_user.username, "password": PASSWORDS["ADMIN"]}
    assert browser.post("/admin/login/", form).status_code == 403
    token = page.cookies["csrftoken"].value
    signed_in = browser.post("/admin/login/", {**form, "csrfmiddlewaretoken": token})
    assert signed_in.status_code == 302
    assert browser.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_api_session_path_when_back_office_calls_it_with_its_session_then_answered(admin_user: Any) -> None:
    """The alerts banner: the admin's page calls the alerts API with its session, which must still be read."""
    browser = Client()
    browser.force_login(admin_user)
    response = browser.get("/api/v1/alerts/")
    assert response.status_code == 200, response.content
    assert hasattr(response.wsgi_request, "session")


def _patterns(patterns: list[Any]) -> list[URLPattern]:
    found: list[URLPattern] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _patterns(pattern.url_patterns)
        else:
            found.append(pattern)
    return found


def test_api_views_when_taking_sessions_then_under_api_session_paths() -> None:
    """Every API view that authenticates by session is under API_SESSION_PATHS, where the session runs: one added
    elsewhere would answer its session's callers 401."""
    placeholder = "00000000-0000-0000-0000-000000000000"
    by_session = []
    for pattern in _patterns(get_resolver().url_patterns):
        view = getattr(pattern.callback, "cls", None)
        if view is None or not any(
            issubclass(kind, SessionAuthentication) for kind in getattr(view, "authentication_classes", ())
        ):
            continue
        assert pattern.name, f"{view.__name__} takes sessions and has no URL name to check it by"
        kwargs = dict.fromkeys(pattern.pattern.regex.groupindex, placeholder)
        by_session.append(reverse(pattern.name, kwargs=kwargs))
    assert by_session, "the alerts API takes the admin's session: the walk found none"
    outside = [
        path for path in by_session if path.startswith("/api/") and not path.startswith(settings.API_SESSION_PATHS)
    ]
    assert outside == []
