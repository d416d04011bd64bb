"""Hand-written abuse the fuzzer misses: huge and lying bodies, deep nesting, look-alike symbols, header
injection, SQL and template injection in filters and search (API and admin), mass assignment, IDOR."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from audit.models import Event
from orders.models import Order
from risk.models import Position

pytestmark = pytest.mark.django_db

ORDER = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "price": 10}


def _written() -> tuple[int, int]:
    return Order.objects.count(), Event.objects.count()


def _post_raw(client: Any, path: str, raw: bytes, **extra: Any) -> Any:
    return client.generic("POST", path, raw, content_type="application/json", **extra)


# --- sizes --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/auth/login", "/api/v1/risk/kill-switch", "/admin/login/"])
def test_body_over_the_limit_is_413_before_parsing_and_nothing_written(trader, client_for, path) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert 0 < limit <= 1024 * 1024
    client = client_for(trader)
    before = _written()
    for size in (limit + 1, 8 * 1024 * 1024):
        raw = json.dumps({**ORDER, "strategy": "x" * size}).encode()
        response = _post_raw(client, path, raw)
        assert response.status_code == 413, (size, response.status_code)
        assert response.json()["code"] == "too_large"
    assert _written() == before


def test_body_just_under_the_limit_is_parsed(trader, client_for) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps({**ORDER, "padding": " " * 10})
    raw = body[:-1].encode() + b" " * (limit - len(body.encode())) + b"}"
    assert len(raw) == limit
    response = _post_raw(client_for(trader), "/api/v1/orders", raw)
    assert response.status_code == 200, response.content


def test_lying_or_malformed_content_length_is_a_clean_4xx(trader, client_for) -> None:
    client = client_for(trader)
    before = _written()
    raw = json.dumps({**ORDER, "strategy": "y" * 200_000}).encode()
    # Declares 10 bytes, sends 200 kB: only the declared bytes are read, which is not JSON.
    assert _post_raw(client, "/api/v1/orders", raw, CONTENT_LENGTH="10").status_code == 400
    assert _post_raw(client, "/api/v1/orders", raw, CONTENT_LENGTH="abc").status_code == 400
    assert _post_raw(client, "/api/v1/orders", raw, CONTENT_LENGTH="-5").status_code == 400
    assert _written() == before


@pytest.mark.parametrize("depth", [50, 5_000, 30_000])
@pytest.mark.parametrize("field", ["symbol", "quantity", "client_order_id", "strategy"])
def test_deeply_nested_json_is_400_and_nothing_written(trader, client_for, depth, field) -> None:
    nested = "[" * depth + "1" + "]" * depth
    raw = json.dumps(ORDER)[:-1] + f', "{field}": {nested}}}'
    client = client_for(trader)
    before = _written()
    response = _post_raw(client, "/api/v1/orders", raw.encode())
    assert response.status_code == 400, response.content[:300]
    assert _written() == before


@pytest.mark.parametrize("path", ["/api/v1/risk/limits", "/api/v1/risk/kill-switch", "/api/v1/auth/refresh"])
def test_deep_nesting_on_other_writes_is_400(risk_manager, client_for, path) -> None:
    client = client_for(risk_manager)
    raw = b'{"reason": ' + b"{" + b'"a":{' * 10_000 + b"1" + b"}" * 10_001 + b"}"
    method = "PUT" if path.endswith("limits") else "POST"
    response = client.generic(method, path, raw, content_type="application/json")
    assert response.status_code == 400, response.content[:300]


# --- look-alike symbols -------------------------------------------------------------------------------------------
LOOKALIKES = {
    "cyrillic A": "\u0410APL",
    "greek omicron": "MS\u039fT",
    "zero-width space": "AA\u200bPL",
    "zero-width joiner": "AAP\u200dL",
    "right-to-left override": "\u202eLPAA",
    "combining accent": "A\u0301APL",
    "soft hyphen": "AA\u00adPL",
    "BOM": "\ufeffAAPL",
    "NUL": "AA\x00PL",
    "newline": "AA\nPL",
    "emoji": "AAPL\U0001f680",
}


@pytest.mark.parametrize("symbol", LOOKALIKES.values(), ids=LOOKALIKES.keys())
def test_symbol_with_unicode_tricks_is_refused(trader, client_for, symbol) -> None:
    client = client_for(trader)
    before = _written()
    response = client.post("/api/v1/orders", {**ORDER, "symbol": symbol}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["detail"][0]["field"] == "symbol"
    assert _written() == before


# Case and compatibility forms fold to the one ASCII symbol (the Turkish dotless i upper-cases to I).
@pytest.mark.parametrize(
    "variant", ["AAPL", "aapl", "\uff21\uff21\uff30\uff2c", " AAPL ", "\uff41\uff41\uff50\uff4c", "\u0131ibm"]
)
def test_symbol_variants_fold_to_one_symbol(trader, client_for, variant) -> None:
    response = client_for(trader).post("/api/v1/orders", {**ORDER, "symbol": variant}, format="json")
    assert response.status_code == 200, response.content
    assert Order.objects.get().symbol == ("IIBM" if "bm" in variant else "AAPL")


def test_every_stored_symbol_is_plain_ascii_whatever_was_sent(trader, client_for) -> None:
    client = client_for(trader)
    for n, symbol in enumerate(["\uff2d\uff33\uff26\uff34", "msft", "MSFT", *LOOKALIKES.values()]):
        client.post("/api/v1/orders", {**ORDER, "symbol": symbol, "client_order_id": f"u{n}"}, format="json")
    assert set(Order.objects.values_list("symbol", flat=True)) == {"MSFT"}
    assert set(Position.objects.values_list("symbol", flat=True)) <= {"MSFT"}


# --- header injection ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        "abc\r\nSet-Cookie: evil=1",
        f"{uuid.uuid4()}\r\nX-Injected: 1",
        f"{uuid.uuid4()}\nLocation: https://evil.example",
        "' OR 1=1 --",
        "{{7*7}}",
        "x" * 10_000,
    ],
)
def test_correlation_header_injection_is_replaced_never_echoed(trader, client_for, header) -> None:
    response = client_for(trader).post("/api/v1/orders", ORDER, format="json", HTTP_X_CORRELATION_ID=header)
    assert response.status_code == 200
    echoed = response["X-Correlation-ID"]
    assert str(uuid.UUID(echoed)) == echoed and echoed not in header
    assert "Set-Cookie" not in response.headers and "X-Injected" not in response.headers
    assert "Location" not in response.headers
    assert str(Order.objects.get().correlation_id) == echoed


# --- injection strings in filters and search ----------------------------------------------------------------------
INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE orders_order; --",
    "1 UNION SELECT password FROM accounts_user --",
    '" OR ""="',
    "\\'; SELECT pg_sleep(5); --",
    "%' OR 1=1 --",
    "{{ settings.SECRET_KEY }}",
    "{% debug %}",
    "${7*7}",
    "<script>alert(1)</script>",
    "\x00",
]


@pytest.fixture
def placed(trader, client_for) -> Any:
    response = client_for(trader).post("/api/v1/orders", ORDER, format="json")
    assert response.status_code == 200
    return Order.objects.get(pk=response.json()["order_id"])


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_in_api_filters_matches_nothing_and_never_errors(placed, admin_user, client_for, payload) -> None:
    client = client_for(admin_user)
    answers = [
        client.get("/api/v1/orders", {"symbol": payload}),
        client.get("/api/v1/orders", {"status": payload}),
        client.get("/api/v1/audit/events", {"event_type": payload}),
        client.get("/api/v1/audit/events", {"user": payload}),
        client.get("/api/v1/audit/events", {"since": payload}),
        client.get("/api/v1/audit/events", {"symbol": payload}),
        client.get(f"/api/v1/audit/correlation/{payload}"),
        client.get(f"/api/v1/audit/order/{payload}/trail"),
        client.get(f"/api/v1/orders/{payload}"),
    ]
    for response in answers:
        assert response.status_code in (200, 400, 404), (response.status_code, response.content[:200])
        body = response.content.decode()
        assert settings.SECRET_KEY not in body
        if response.status_code == 200 and "orders" in response.json():
            assert response.json()["orders"] == [] and response.json()["total"] == 0
    assert Order.objects.count() == 1  # the table is still there, with its one order


def _admin_client(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _changelists() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model, model_admin in admin.site._registry.items()
        if model_admin.get_search_fields(None) or model_admin.list_filter
    ]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_in_admin_search_and_filters_never_errors_or_renders(placed, admin_user, payload) -> None:
    client = _admin_client(admin_user)
    urls = _changelists()
    assert len(urls) >= 4
    for url in urls:
        for params in ({"q": payload}, {"status__exact": payload}, {"event_type__exact": payload}):
            response = client.get(url, params)
            # Django's admin answers an unknown filter value with a redirect (?e=1), never an error page.
            assert response.status_code in (200, 302, 400), (url, params, response.status_code)
            body = response.content.decode()
            assert settings.SECRET_KEY not in body
            assert "<script>alert(1)</script>" not in body
    assert Order.objects.count() == 1


def test_template_strings_stored_as_data_are_shown_escaped_never_evaluated(trader, admin_user, client_for) -> None:
    body = {**ORDER, "strategy": "{{ settings.SECRET_KEY }}<b>x</b>", "client_order_id": "{% debug %}"}
    response = client_for(trader).post("/api/v1/orders", body, format="json")
    assert response.status_code == 200
    order = Order.objects.get()
    assert order.strategy == body["strategy"]
    page = _admin_client(admin_user).get(reverse("admin:orders_order_change", args=[order.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert settings.SECRET_KEY not in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text
    events = _admin_client(admin_user).get(reverse("admin:audit_event_changelist"))
    assert events.status_code == 200 and settings.SECRET_KEY not in events.content.decode()


# --- mass assignment ----------------------------------------------------------------------------------------------
def test_client_cannot_set_status_prices_user_or_correlation_of_its_order(trader, trader2, client_for) -> None:
    forged_correlation = uuid.uuid4()
    forged_id = uuid.uuid4()
    body = {
        **ORDER,
        "status": "EXECUTED",
        "executed_price": 1,
        "executed_quantity": 1,
        "rejection_reason": "forged",
        "user": trader2.pk,
        "user_id": trader2.pk,
        "correlation_id": str(forged_correlation),
        "order_id": str(forged_id),
        "id": str(forged_id),
        "created_at": "2000-01-01T00:00:00Z",
        "retry_count": 99,
        "execution_key": "forged",
    }
    response = client_for(trader).post("/api/v1/orders", body, format="json")
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert Order.objects.count() == 0
        return
    order = Order.objects.get()
    assert order.status == "APPROVED"
    assert order.executed_price is None and order.executed_quantity is None
    assert order.user_id == trader.pk
    assert order.correlation_id != forged_correlation and order.pk != forged_id
    assert order.created_at.year > 2000 and order.retry_count == 0
    assert order.rejection_reason in ("", None) and order.execution_key != "forged"


def test_cancel_body_cannot_change_anything_but_the_reason(placed, trader, client_for) -> None:
    response = client_for(trader).post(
        f"/api/v1/orders/{placed.pk}/cancel",
        {"reason": "mine", "status": "EXECUTED", "executed_price": 5, "user": 99},
        format="json",
    )
    assert response.status_code == 200
    placed.refresh_from_db()
    assert placed.status == "CANCELLED" and placed.executed_price is None and placed.user_id == trader.pk


def test_limits_body_cannot_set_risk_state_or_audit_fields(risk_manager, client_for) -> None:
    from risk.models import RiskState

    body = dict.fromkeys(("max_position_size", "max_daily_volume", "max_net_exposure", "max_gross_exposure"), 1000)
    body.update({"executed_volume": 0, "open_volume": 0, "trading_day": "2000-01-01", "id": 7, "scope": "USER"})
    response = client_for(risk_manager).put("/api/v1/risk/limits", body, format="json")
    assert response.status_code in (200, 400)
    state = RiskState.objects.first()
    if state is not None:
        assert state.trading_day is None or state.trading_day.year > 2000


# --- IDOR ---------------------------------------------------------------------------------------------------------
def test_another_traders_order_trail_and_tokens_are_out_of_reach(placed, trader, trader2, client_for) -> None:
    other = client_for(trader2)
    assert other.get(f"/api/v1/orders/{placed.pk}").status_code == 404
    assert other.post(f"/api/v1/orders/{placed.pk}/cancel", {}, format="json").status_code == 404
    listed = other.get("/api/v1/orders", {"user": trader.pk, "user_id": trader.pk}).json()
    assert listed == {"orders": [], "total": 0}
    assert other.get(f"/api/v1/audit/order/{placed.pk}/trail").status_code == 403
    assert other.get(f"/api/v1/audit/correlation/{placed.correlation_id}").status_code == 403
    # The owner's refresh token cannot be logged out (revoked) by someone else.
    owner_refresh = client_for(trader).tokens["refresh_token"]
    assert other.post("/api/v1/auth/logout", {"refresh_token": owner_refresh}, format="json").status_code in (
        400,
        401,
        403,
    )
    owner = client_for(trader)
    assert owner.post("/api/v1/auth/refresh", {"refresh_token": owner_refresh}, format="json").status_code == 200
    placed.refresh_from_db()
    assert placed.status == "APPROVED"


def test_numbers_in_bodies_stay_exact_through_the_api(trader, client_for) -> None:
    body = {**ORDER, "quantity": "0.00000001", "price": "99999999999.99999999"}
    response = client_for(trader).post("/api/v1/orders", body, format="json")
    if response.status_code == 200:
        order = Order.objects.get()
        assert order.quantity == Decimal("0.00000001") and order.price == Decimal("99999999999.99999999")
    else:
        assert response.status_code == 400 and Order.objects.count() == 0
