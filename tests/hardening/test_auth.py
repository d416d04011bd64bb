"""Auth hardening: the role matrix covers every API operation (reusing tests/accounts' API.md matrix and adding
the operations the table leaves out), bad tokens of every kind refused on every protected operation, the per-user
order throttle (429 with Retry-After), and the shared lockout of the API and the admin login."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from accounts.models import Role
from market import services
from orders import apis as order_apis
from orders import submission
from orders.models import Order
from tests.accounts.test_permissions import MATRIX
from tests.conftest import PASSWORDS

pytestmark = pytest.mark.django_db

ROLES = list(Role.values)
ANY = dict.fromkeys(ROLES, True)
STAFF = {"TRADER": False, "RISK_MANAGER": True, "COMPLIANCE": True, "ADMIN": True, "MARKET_DATA": False}
# Operations API.md's role table does not name, with who may call them (API.md's endpoint tables): the owner's
# order and cancel for any role (404 for someone else's, tested in test_input), PATCH limits like PUT, /metrics.
ADMIN_ONLY = {"TRADER": False, "RISK_MANAGER": False, "COMPLIANCE": False, "ADMIN": True, "MARKET_DATA": False}
# The v1 roles (whose table gives them orders and metrics); MARKET_DATA, a feed's account, has neither.
V1_ROLES = {role: role != "MARKET_DATA" for role in ROLES}
# POST /market-data: admins and the MARKET_DATA role (an external feed's account).
PUSHERS = {**ADMIN_ONLY, "MARKET_DATA": True}
EXTRA = {
    ("GET", "/orders/{order_id}"): V1_ROLES,
    ("POST", "/orders/{order_id}/cancel"): V1_ROLES,
    ("PATCH", "/risk/limits"): STAFF,
    ("GET", "/metrics"): V1_ROLES,
    # API.md v1 additions: desks and books (set up by admins), scoped limits and trading states (the v1
    # limits roles for the firm, trader and symbol scopes; desk and book scopes also need the desk's grant).
    ("GET", "/desks"): ANY,
    ("GET", "/books"): ANY,
    ("POST", "/desks"): ADMIN_ONLY,
    ("POST", "/books"): ADMIN_ONLY,
    ("POST", "/books/{code}/grants"): ADMIN_ONLY,
    ("DELETE", "/books/{code}/grants"): ADMIN_ONLY,
    ("POST", "/desks/{code}/grants"): ADMIN_ONLY,
    ("DELETE", "/desks/{code}/grants"): ADMIN_ONLY,
    ("GET", "/risk/limits/{scope}"): STAFF,
    ("PUT", "/risk/limits/{scope}"): STAFF,
    ("PATCH", "/risk/limits/{scope}"): STAFF,
    ("GET", "/risk/limits/scopes"): STAFF,
    ("GET", "/risk/trading-state"): ANY,
    ("POST", "/risk/trading-state"): STAFF,
    # Instruments (reference data): any role reads them.
    ("GET", "/instruments"): ANY,
    ("GET", "/instruments/{symbol}"): ANY,
    # Market data: any role reads prices; admins and the MARKET_DATA role push them.
    ("POST", "/market-data"): PUSHERS,
    ("GET", "/market-data/{symbol}"): ANY,
    ("GET", "/market-data/{symbol}/history"): ANY,
    # The order lifecycle: amend is the owner's (404 for anyone else's, tested in tests/orders); the venues and
    # the internal venue's book and trades are read by whoever may view orders.
    ("PATCH", "/orders/{order_id}"): V1_ROLES,
    ("GET", "/venues"): V1_ROLES,
    ("GET", "/venues/INTERNAL/book/{symbol}"): V1_ROLES,
    ("GET", "/venues/INTERNAL/trades/{symbol}"): V1_ROLES,
    # Analytics: whoever may read the risk metrics (the v1 roles), for the scopes they may view.
    ("GET", "/risk/var"): V1_ROLES,
    ("GET", "/risk/pnl"): V1_ROLES,
    ("GET", "/risk/stress/scenarios"): V1_ROLES,
    ("POST", "/risk/stress"): V1_ROLES,
    # Governance: alerts for risk managers and up; pending changes listed for them and decided by whoever may
    # manage the scope's limits (v1's matrix gives compliance the limits too), never by the requester.
    ("GET", "/alerts"): STAFF,
    ("GET", "/alerts/stream"): STAFF,
    ("POST", "/alerts/{alert_id}/ack"): STAFF,
    ("GET", "/approvals"): STAFF,
    ("POST", "/approvals/{change_id}/approve"): STAFF,
    ("POST", "/approvals/{change_id}/reject"): STAFF,
}
INSTRUMENT = {"symbol": "MATRIX", "name": "Matrix Inc.", "asset_class": "EQUITY", "currency": "USD", "tick_size": "0.01",
              "lot_size": "1"}  # fmt: skip
PUBLIC = {("POST", "/auth/login"), ("POST", "/auth/refresh"), ("GET", "/health")}
AUTHENTICATED_ANY = {("POST", "/auth/logout")}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def _api_operations() -> set[tuple[str, str]]:
    """(METHOD, /path) of every operation the URLconf serves under /api/v1/, from the views themselves."""
    v1 = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    operations = set()

    def walk(patterns: list[Any]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "view_class", None)
                path = "/" + str(pattern.pattern).strip("^$").replace("/?", "")
                for name, pattern_text in (
                    ("order_id", "[^/]+"),
                    ("correlation_id", "[^/]+"),
                    ("code", "[^/]+"),
                    ("scope", ".+?"),
                    ("symbol", "[A-Za-z0-9][A-Za-z0-9._/-]{0,19}?"),
                    ("alert_id", "[0-9a-fA-F-]{36}"),
                    ("change_id", "[^/]+"),
                ):
                    path = path.replace(f"(?P<{name}>{pattern_text})", "{" + name + "}")
                for method in HTTP_METHODS:
                    if view is not None and hasattr(view, method):
                        operations.add((method.upper(), path))

    walk(v1.url_patterns)
    return operations


def test_every_api_operation_has_a_role_rule_and_a_test() -> None:
    covered = {(m, p) for m, p, _, _ in MATRIX} | set(EXTRA) | PUBLIC | AUTHENTICATED_ANY
    served = _api_operations()
    assert len(served) >= 15
    assert served - covered == set(), f"operations without a role rule: {sorted(served - covered)}"
    assert covered - served == set(), f"rules for operations not served: {sorted(covered - served)}"


@pytest.fixture
def order_of(make_user: Any) -> Order:
    owner = make_user("owner1", "TRADER")
    order, _ = submission.order_submit(
        user=owner,
        request=submission.OrderRequest(symbol="MSFT", side="BUY", quantity=Decimal("5"), price=Decimal("10")),
    )
    return order


def _own_order(user: Any) -> Order:
    order, _ = submission.order_submit(
        user=user,
        request=submission.OrderRequest(symbol="IBM", side="BUY", quantity=Decimal("1"), price=Decimal("10")),
    )
    return order


def _call_extra(client: APIClient, method: str, path: str, user: Any) -> Any:
    if path.startswith("/instruments"):
        services.instruments_load([INSTRUMENT])
        return client.get("/api/v1" + path.format(symbol=INSTRUMENT["symbol"]))
    if path.startswith("/market-data"):
        return _call_market_data(client, method, path)
    if path.startswith(("/risk/var", "/risk/pnl", "/risk/stress")):
        if method == "GET":
            return client.get("/api/v1" + path + ("?scope=firm" if path != "/risk/stress/scenarios" else ""))
        return client.post("/api/v1" + path, {"scope": "firm", "shocks": {"asset_class:EQUITY": -0.1}}, format="json")
    if path.startswith("/alerts"):
        return _call_alerts(client, method, path)
    if path.startswith("/approvals"):
        return _call_approvals(client, method, path, user)
    if path.startswith("/venues"):
        _call_market_data(client, "GET", "/market-data/{symbol}")  # lists AAPL
        return client.get("/api/v1" + path.format(symbol="AAPL"))
    if "{code}" in path or "{scope}" in path or path.startswith(("/desks", "/books", "/risk/trading-state")):
        return _call_scoped(client, method, path, user)
    order = _own_order(user)
    url = "/api/v1" + path.format(order_id=order.pk)
    if method == "GET":
        return client.get(url)
    if method == "PATCH" and "{order_id}" in path:
        return client.patch(url, {"quantity": "2"}, format="json")
    if method == "PATCH":
        return client.patch(url, {"max_daily_volume": 10**7, "reason": "matrix"}, format="json")
    return client.post(url, {"reason": "matrix"}, format="json")


def _call_alerts(client: APIClient, method: str, path: str) -> Any:
    from alerts.models import Alert

    if method == "GET":
        return client.get("/api/v1" + path + ("?lifetime=0.1" if path.endswith("stream") else ""))
    alert = Alert.objects.create(kind="TRADING_STATE", severity="WARNING", scope="firm", message="m", dedup_key="m")
    return client.post("/api/v1" + path.format(alert_id=alert.alert_id), {"note": "seen"}, format="json")


def _call_approvals(client: APIClient, method: str, path: str, user: Any) -> Any:
    """A limit raise another risk manager asked for (FOUR_EYES_LIMIT_RAISE_PCT on), decided by `user`."""
    if method == "GET":
        return client.get("/api/v1" + path)
    from django.test import override_settings

    from accounts import services as account_services

    requester = account_services.user_create(
        actor=None, username=f"req-{uuid.uuid4().hex[:6]}", password=PASSWORDS["RISK_MANAGER"], role="RISK_MANAGER"
    )
    with override_settings(FOUR_EYES_LIMIT_RAISE_PCT=10):
        asking = APIClient()
        asking.force_authenticate(requester)
        raised = asking.patch(
            "/api/v1/risk/limits", {"max_gross_exposure": "10000000000", "reason": "m"}, format="json"
        )
        assert raised.status_code == 202, raised.content
        return client.post(
            "/api/v1" + path.format(change_id=raised.json()["change_id"]), {"reason": "matrix"}, format="json"
        )


def _call_scoped(client: APIClient, method: str, path: str, user: Any) -> Any:
    """The v1 additions' operations, each with a body that succeeds for a caller who may make it."""
    code = "EQ" if path.startswith("/desks") else "MAIN"
    url = "/api/v1" + path.format(code=code, scope="symbol:MATRIX")
    fresh = uuid.uuid4().hex[:8].upper()
    if method == "GET":
        return client.get(url)
    if method == "DELETE":  # every user is granted view on MAIN and on its desk EQ
        return client.delete(f"{url}?username={user.username}&permission=view")
    if method in ("PUT", "PATCH"):
        body: dict[str, Any] = {"max_order_quantity": 100, "reason": "matrix"}
    elif path == "/desks":
        body = {"code": f"D{fresh}", "name": "matrix desk"}
    elif path == "/books":
        body = {"code": f"B{fresh}", "name": "matrix book", "desk": "EQ", "currency": "USD"}
    elif path.endswith("/grants"):
        body = {"username": user.username, "permission": "view"}
    else:  # POST /risk/trading-state
        body = {"scope": "symbol:MATRIX", "state": "REDUCING", "reason": "matrix"}
    return getattr(client, method.lower())(url, body, format="json")


def _call_market_data(client: APIClient, method: str, path: str) -> Any:
    from market.models import Instrument

    Instrument.objects.get_or_create(
        symbol="AAPL",
        defaults={"name": "Apple", "asset_class": "EQUITY", "currency": "USD", "tick_size": "0.01", "lot_size": 1},
    )
    url = "/api/v1" + path.format(symbol="AAPL")
    if method == "GET":
        return client.get(url)
    return client.post(url, {"prices": [{"symbol": "AAPL", "last": 150}]}, format="json")


EXTRA_CASES = [(m, p, role, ok) for (m, p), verdicts in EXTRA.items() for role, ok in verdicts.items()]


@pytest.mark.parametrize("method,path,role,allowed", EXTRA_CASES, ids=[f"{r}-{m}-{p}" for m, p, r, _ in EXTRA_CASES])
def test_role_rule_of_operations_outside_the_table(make_user, client_for, method, path, role, allowed) -> None:
    user = make_user(f"u-{role.lower()}", role)
    response = _call_extra(client_for(user), method, path, user)
    if allowed:
        assert 200 <= response.status_code < 300, (response.status_code, response.content)
    else:
        assert response.status_code == 403, (response.status_code, response.content)


# --- bad tokens on every protected operation -------------------------------------------------------------------
PROTECTED = sorted({(m, p) for m, p, _, _ in MATRIX} | set(EXTRA) | AUTHENTICATED_ANY)


def _claims(user: Any, **changes: Any) -> dict[str, Any]:
    from accounts.claims import SESSION_CLAIM

    now = datetime.now(UTC)
    claims = {
        "token_type": "access",
        "user_id": str(user.pk),
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        SESSION_CLAIM: uuid.uuid4().hex,
    }
    claims.update(changes)
    return claims


FORGED = b'{"user_id": "1", "token_type": "access"}'


def _bad_tokens(user: Any, revoked: str) -> dict[str, str]:
    key = settings.SIMPLE_JWT["SIGNING_KEY"]
    past = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    good = jwt.encode(_claims(user), key, algorithm="HS256")
    header, payload, signature = good.split(".")
    return {
        "expired": jwt.encode(_claims(user, exp=past), key, algorithm="HS256"),
        "alg none": jwt.encode(_claims(user), None, algorithm="none"),
        "wrong key": jwt.encode(_claims(user), "another-key-" + "k" * 40, algorithm="HS256"),
        "HS512 with the key": jwt.encode(_claims(user), key, algorithm="HS512"),
        "forged payload": header + "." + jwt.utils.base64url_encode(FORGED).decode() + "." + signature,
        "no signature": f"{header}.{payload}.",
        "garbage": "not-a-jwt",
        "revoked by logout": revoked,
    }


@pytest.mark.parametrize("method,path", PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_bad_tokens_are_refused_on_every_protected_operation(admin_user, order_of, method, path) -> None:
    session = APIClient()
    tokens = session.post(
        "/api/v1/auth/login", {"username": "admin", "password": PASSWORDS["ADMIN"]}, format="json"
    ).json()
    session.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert session.post(
        "/api/v1/auth/logout", {"refresh_token": tokens["refresh_token"]}, format="json"
    ).status_code in (
        200,
        204,
    )
    url = "/api/v1" + path.format(
        order_id=order_of.pk,
        correlation_id=order_of.correlation_id,
        code="MAIN",
        scope="firm",
        symbol="AAPL",
        alert_id=uuid.uuid4(),
        change_id=uuid.uuid4(),
    )
    before = Order.objects.count()
    for kind, token in _bad_tokens(admin_user, tokens["access_token"]).items():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        body = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "price": 1, "enabled": True, "reason": "x"}
        response = getattr(client, method.lower())(url, body, format="json")
        assert response.status_code == 401, (kind, response.status_code, response.content[:200])
    assert Order.objects.count() == before
    order_of.refresh_from_db()
    assert order_of.status == "APPROVED"


# --- order submission throttle ----------------------------------------------------------------------------------
def test_order_throttle_rate_is_a_setting() -> None:
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["orders"]


def test_order_submission_is_throttled_per_user_with_retry_after(trader, trader2, client_for, monkeypatch) -> None:
    monkeypatch.setattr(order_apis.OrderSubmitThrottle, "THROTTLE_RATES", {"orders": "3/min"})
    mine, other = client_for(trader), client_for(trader2)
    answers = [
        mine.post("/api/v1/orders", {"symbol": "AAPL", "side": "BUY", "quantity": 1, "price": 10 + n}, format="json")
        for n in range(5)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    throttled = answers[3]
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert throttled.json()["code"] == "throttled"
    assert Order.objects.filter(user=trader).count() == 3  # nothing written for a throttled request
    # Another user has a budget of their own; reading is never throttled.
    assert (
        other.post(
            "/api/v1/orders", {"symbol": "AAPL", "side": "BUY", "quantity": 1, "price": 9}, format="json"
        ).status_code
        == 200
    )
    assert mine.get("/api/v1/orders").status_code == 200


# --- brute force: API and admin share one lockout ----------------------------------------------------------------
def test_failures_on_the_api_lock_the_admin_login_too(admin_user) -> None:
    api = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        api.post("/api/v1/auth/login", {"username": "admin", "password": "wrong"}, format="json")
    locked = api.post("/api/v1/auth/login", {"username": "admin", "password": PASSWORDS["ADMIN"]}, format="json")
    assert locked.status_code == 429 and "Retry-After" in locked
    browser = Client()
    page = browser.post("/admin/login/?next=/admin/", {"username": "admin", "password": PASSWORDS["ADMIN"]})
    assert page.status_code in (403, 429)
    assert "_auth_user_id" not in browser.session


def test_failures_on_the_admin_login_lock_the_api_too(admin_user) -> None:
    browser = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        browser.post("/admin/login/?next=/admin/", {"username": "admin", "password": "wrong"})
    right = {"username": "admin", "password": PASSWORDS["ADMIN"]}
    assert browser.post("/admin/login/?next=/admin/", right).status_code in (403, 429)
    assert "_auth_user_id" not in browser.session
    assert APIClient().post("/api/v1/auth/login", right, format="json").status_code == 429
