"""Scoped limits and trading states over the API (API.md "Scoped limits and trading states"): who manages a
scope, nulls that inherit, bad input refused with nothing written, HALTED cancelling exactly its scope's open
orders, the v1 firm calls unchanged."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from audit.models import Event, EventType
from books.models import Book, Desk
from books.services import grant_add
from orders.models import OrderStatus
from risk.models import Position, RiskLimits, RiskState, ScopeState

pytestmark = pytest.mark.django_db

LIMIT_NAMES = [
    "max_order_quantity",
    "max_order_value",
    "max_position_size",
    "max_daily_volume",
    "max_net_exposure",
    "max_gross_exposure",
    "max_daily_loss",
    "price_collar_pct",
]


def _written() -> tuple[Any, ...]:
    return (
        list(RiskLimits.objects.order_by("pk").values()),
        list(ScopeState.objects.values()),
        Event.objects.exclude(event_type__in=[EventType.PERMISSION_DENIED, EventType.LOGIN_SUCCEEDED]).count(),
    )


@pytest.fixture
def desk_manager(risk_manager: Any) -> Any:
    """risk1, granted desk EQ to manage (not FX)."""
    grant_add(actor=None, obj=Desk.objects.get(code="EQ"), user=risk_manager, permission="manage")
    return risk_manager


def test_get_scope_limits_when_unset_then_all_null_with_usage(desk_manager: Any, client_for: Any) -> None:
    response = client_for(desk_manager).get("/api/v1/risk/limits/desk:EQ")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["scope"] == "desk:EQ"
    assert {name: data[name] for name in LIMIT_NAMES} == dict.fromkeys(LIMIT_NAMES)
    assert set(data["usage"]) >= {"max_position_size", "max_daily_volume", "max_gross_exposure"}


def test_patch_scope_limits_when_set_then_only_those_set_others_null_and_one_event(
    desk_manager: Any, client_for: Any
) -> None:
    client = client_for(desk_manager)
    body = {"max_order_quantity": "500", "price_collar_pct": "2.5", "reason": "desk review"}
    response = client.patch("/api/v1/risk/limits/book:MAIN", body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert Decimal(str(data["max_order_quantity"])) == 500 and Decimal(str(data["price_collar_pct"])) == Decimal("2.5")
    assert data["max_position_size"] is None and data["max_daily_volume"] is None  # inherits the firm's
    (event,) = Event.objects.filter(event_type=EventType.LIMITS_CHANGED)
    assert event.payload["scope"] == "book:MAIN" and event.payload["reason"] == "desk review"
    assert event.payload["old"]["max_order_quantity"] is None
    assert Decimal(event.payload["new"]["max_order_quantity"]) == 500
    # null clears it again
    response = client.put(
        "/api/v1/risk/limits/book:MAIN", {"max_order_quantity": None, "reason": "undo"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["max_order_quantity"] is None
    assert RiskLimits.objects.get(scope="BOOK", scope_key="MAIN").max_order_quantity is None
    # the firm still sets all its limits (the parent that applies where the book sets none)
    firm = client.get("/api/v1/risk/limits/firm").json()
    assert firm["max_position_size"] == 1000000 and firm["max_order_quantity"] is None


def test_scope_limits_list_when_some_set_then_each_with_usage(desk_manager: Any, client_for: Any) -> None:
    client = client_for(desk_manager)
    client.patch("/api/v1/risk/limits/symbol:AAPL", {"max_position_size": 10, "reason": "r"}, format="json")
    client.patch("/api/v1/risk/limits/instrument:msft", {"max_order_value": 99, "reason": "r"}, format="json")
    scopes = client.get("/api/v1/risk/limits/scopes").json()["scopes"]
    assert [s["scope"] for s in scopes] == ["firm", "symbol:AAPL", "symbol:MSFT"]
    assert all("usage" in s for s in scopes)


def test_symbol_scope_usage_is_firm_row_of_symbol(desk_manager: Any, client_for: Any) -> None:
    Position.objects.create(scope="firm", symbol="AAPL", quantity=Decimal(7), average_price=Decimal(10))
    Position.objects.create(scope="book:MAIN", symbol="AAPL", quantity=Decimal(3), average_price=Decimal(10))
    client = client_for(desk_manager)
    # A position's value at market, as the position limit counts it (the test market's AAPL is at 148).
    assert Decimal(str(client.get("/api/v1/risk/limits/symbol:AAPL").json()["usage"]["max_position_size"])) == 7 * 148
    assert Decimal(str(client.get("/api/v1/risk/limits/book:MAIN").json()["usage"]["max_position_size"])) == 3 * 148


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/risk/limits/desk:NOPE", {"max_order_value": 1, "reason": "r"}),
        ("/api/v1/risk/limits/book:NOPE", {"max_order_value": 1, "reason": "r"}),
        ("/api/v1/risk/limits/trader:nobody", {"max_order_value": 1, "reason": "r"}),
        ("/api/v1/risk/limits/planet:MARS", {"max_order_value": 1, "reason": "r"}),
        ("/api/v1/risk/limits/desk:lower", {"max_order_value": 1, "reason": "r"}),
        ("/api/v1/risk/limits/desk:EQ", {"max_order_value": 0, "reason": "r"}),
        ("/api/v1/risk/limits/desk:EQ", {"max_order_value": -5, "reason": "r"}),
        ("/api/v1/risk/limits/desk:EQ", {"max_order_value": "abc", "reason": "r"}),
        ("/api/v1/risk/limits/desk:EQ", {"max_order_value": 5}),
        ("/api/v1/risk/limits/desk:EQ", {"bogus": 5, "reason": "r"}),
        ("/api/v1/risk/limits/firm", {"max_position_size": None, "reason": "r"}),
    ],
)
def test_patch_scope_limits_when_bad_then_400_and_nothing_written(
    desk_manager: Any, client_for: Any, path: str, body: dict[str, Any]
) -> None:
    client = client_for(desk_manager)
    before = _written()
    response = client.patch(path, body, format="json")
    assert response.status_code == 400, response.content
    assert _written() == before


def test_desk_manager_when_other_desk_then_403_recorded_and_nothing_written(
    desk_manager: Any, fx: Book, client_for: Any
) -> None:
    client = client_for(desk_manager)
    assert (
        client.patch("/api/v1/risk/limits/desk:EQ", {"max_order_value": 5, "reason": "r"}, format="json").status_code
        == 200
    )
    assert (
        client.patch("/api/v1/risk/limits/book:MAIN", {"max_order_value": 5, "reason": "r"}, format="json").status_code
        == 200
    )
    before = _written()
    for path in ("/api/v1/risk/limits/desk:FX", "/api/v1/risk/limits/book:FXMAIN"):
        response = client.patch(path, {"max_order_value": 5, "reason": "r"}, format="json")
        assert response.status_code == 403, response.content
    response = client.post(
        "/api/v1/risk/trading-state", {"scope": "desk:FX", "state": "HALTED", "reason": "r"}, format="json"
    )
    assert response.status_code == 403
    assert _written() == before
    assert Event.objects.filter(event_type=EventType.PERMISSION_DENIED).count() == 3


def test_trader_when_scope_limits_then_403(trader: Any, client_for: Any) -> None:
    client = client_for(trader)
    assert client.get("/api/v1/risk/limits/trader:trader1").status_code == 403
    assert (
        client.patch("/api/v1/risk/limits/firm", {"max_order_value": 5, "reason": "r"}, format="json").status_code
        == 403
    )


def test_compliance_reads_any_scope_admin_manages_any_desk(
    compliance: Any, admin_user: Any, fx: Book, client_for: Any
) -> None:
    assert client_for(compliance).get("/api/v1/risk/limits/desk:FX").status_code == 200
    response = client_for(admin_user).patch(
        "/api/v1/risk/limits/desk:FX", {"max_daily_loss": 5, "reason": "r"}, format="json"
    )
    assert response.status_code == 200, response.content


def test_v1_limits_and_kill_switch_answers_unchanged(risk_manager: Any, client_for: Any) -> None:
    client = client_for(risk_manager)
    limits = client.get("/api/v1/risk/limits").json()
    assert set(limits) == {
        "max_position_size",
        "max_daily_volume",
        "max_net_exposure",
        "max_gross_exposure",
        "kill_switch_enabled",
        "updated_at",
    }
    assert client.patch("/api/v1/risk/limits", {"max_position_size": 5000}, format="json").status_code == 200
    assert Event.objects.get(event_type=EventType.LIMITS_CHANGED).payload["reason"] == "none given"
    answer = client.post("/api/v1/risk/kill-switch", {"enabled": True, "reason": "drill"}, format="json").json()
    assert set(answer) == {"kill_switch_enabled", "message", "timestamp", "cancelled_orders"}
    assert answer["kill_switch_enabled"] is True and answer["message"] == "Kill switch activated"
    state = RiskState.objects.get(pk=1)
    assert state.trading_state == "HALTED" and state.kill_switch_enabled
    states = client.get("/api/v1/risk/trading-state").json()["states"]
    assert [(s["scope"], s["state"], s["reason"], s["changed_by"]) for s in states] == [
        ("firm", "HALTED", "drill", "risk1")
    ]
    client.post("/api/v1/risk/kill-switch", {"enabled": False}, format="json")
    assert RiskState.objects.get(pk=1).trading_state == "ACTIVE"
    assert client.get("/api/v1/risk/trading-state").json() == {"states": []}


HALT_CASES = {
    "desk:EQ": {"eq_a_aapl", "eq_b_msft", "eq_a_msft"},
    "book:MAIN": {"eq_a_aapl", "eq_a_msft"},
    "trader:trader2": {"eq_b_msft", "fx_b_aapl"},
    "symbol:AAPL": {"eq_a_aapl", "fx_b_aapl"},
    "firm": {"eq_a_aapl", "eq_b_msft", "eq_a_msft", "fx_b_aapl"},
}


@pytest.mark.parametrize("scope", list(HALT_CASES))
def test_halted_when_set_then_exactly_the_scopes_open_orders_cancelled(
    scope: str,
    desk_manager: Any,
    trader: Any,
    trader2: Any,
    fx: Book,
    main_book: Book,
    make_order: Any,
    client_for: Any,
) -> None:
    eq_b = Book.objects.create(code="EQB", name="EQ second", desk=main_book.desk)
    orders = {
        "eq_a_aapl": make_order(trader, main_book, symbol="AAPL"),
        "eq_a_msft": make_order(trader, main_book, symbol="MSFT"),
        "eq_b_msft": make_order(trader2, eq_b, symbol="MSFT"),
        "fx_b_aapl": make_order(trader2, fx, symbol="AAPL"),
        "executed": make_order(trader, main_book, symbol="AAPL", status=OrderStatus.EXECUTED),
    }
    client = client_for(desk_manager)
    response = client.post(
        "/api/v1/risk/trading-state", {"scope": scope, "state": "HALTED", "reason": "drill"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["previous"] == "ACTIVE" and response.json()["cancelled_orders"] == len(HALT_CASES[scope])
    for name, order in orders.items():
        order.refresh_from_db()
        expected = OrderStatus.CANCELLED if name in HALT_CASES[scope] else OrderStatus.APPROVED
        assert order.status == (OrderStatus.EXECUTED if name == "executed" else expected), name
    (changed,) = Event.objects.filter(event_type=EventType.TRADING_STATE_CHANGED)
    assert changed.payload == {"scope": scope, "state": "HALTED", "previous": "ACTIVE", "reason": "drill"}
    cancels = Event.objects.filter(event_type=EventType.ORDER_CANCELLED)
    assert {str(e.order_id) for e in cancels} == {str(orders[n].pk) for n in HALT_CASES[scope]}
    cause = changed if scope != "firm" else Event.objects.get(event_type=EventType.KILL_SWITCH_ACTIVATED)
    assert {e.causation_id for e in cancels} == {cause.event_id}
    assert [s["scope"] for s in client.get("/api/v1/risk/trading-state").json()["states"]] == [scope]


def test_reducing_then_active_when_set_then_no_cancellation_and_state_listed(
    desk_manager: Any, trader: Any, main_book: Book, make_order: Any, client_for: Any
) -> None:
    order = make_order(trader, main_book)
    client = client_for(desk_manager)
    body = {"scope": "book:MAIN", "state": "REDUCING", "reason": "wind down"}
    assert client.post("/api/v1/risk/trading-state", body, format="json").json()["cancelled_orders"] == 0
    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED
    assert client.get("/api/v1/risk/trading-state").json()["states"][0]["state"] == "REDUCING"
    body = {"scope": "book:MAIN", "state": "ACTIVE", "reason": "done"}
    assert client.post("/api/v1/risk/trading-state", body, format="json").json()["previous"] == "REDUCING"
    assert client.get("/api/v1/risk/trading-state").json() == {"states": []}


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "desk:NOPE", "state": "HALTED", "reason": "r"},
        {"scope": "nonsense", "state": "HALTED", "reason": "r"},
        {"scope": "desk:EQ", "state": "PAUSED", "reason": "r"},
        {"scope": "desk:EQ", "state": "HALTED"},
    ],
)
def test_trading_state_when_bad_then_400_and_nothing_written(
    desk_manager: Any, client_for: Any, body: dict[str, str]
) -> None:
    client = client_for(desk_manager)
    before = _written()
    assert client.post("/api/v1/risk/trading-state", body, format="json").status_code == 400
    assert _written() == before


def test_trading_state_get_when_trader_then_allowed(trader: Any, client_for: Any) -> None:
    assert client_for(trader).get("/api/v1/risk/trading-state").json() == {"states": []}


def test_positions_filters_when_book_then_its_rows_and_when_not_viewable_then_403(
    trader: Any, fx: Book, client_for: Any
) -> None:
    Position.objects.create(scope="firm", symbol="AAPL", quantity=Decimal(5), average_price=Decimal(10))
    Position.objects.create(scope="book:MAIN", symbol="AAPL", quantity=Decimal(2), average_price=Decimal(10))
    Position.objects.create(scope="book:FXMAIN", symbol="EURUSD", quantity=Decimal(9), average_price=Decimal(1))
    client = client_for(trader)
    firm = client.get("/api/v1/risk/positions").json()
    assert [(p["symbol"], p["quantity"]) for p in firm["positions"]] == [("AAPL", 5)]
    book = client.get("/api/v1/risk/positions?book=MAIN").json()
    assert [(p["symbol"], p["quantity"]) for p in book["positions"]] == [("AAPL", 2)]
    assert client.get("/api/v1/risk/positions?symbol=AAPL").json()["positions"][0]["quantity"] == 5
    assert client.get("/api/v1/risk/metrics?book=MAIN").json()["gross_exposure"] == 2 * 148  # at market
    assert client.get("/api/v1/risk/positions?book=FXMAIN").status_code == 403
    assert client.get("/api/v1/risk/metrics?desk=FX").status_code == 403
    assert client.get("/api/v1/risk/positions?book=NOPE").status_code == 400
    assert client.get("/api/v1/risk/positions?trader=trader2").status_code == 400  # no such user here


def test_orders_filters_when_book_or_desk_then_only_those(
    compliance: Any, trader: Any, fx: Book, main_book: Book, make_order: Any, client_for: Any
) -> None:
    eq = make_order(trader, main_book)
    fxo = make_order(trader, fx, symbol="EURUSD")
    client = client_for(compliance)
    assert [o["order_id"] for o in client.get("/api/v1/orders?book=MAIN").json()["orders"]] == [str(eq.pk)]
    assert [o["order_id"] for o in client.get("/api/v1/orders?desk=FX").json()["orders"]] == [str(fxo.pk)]
    assert client.get("/api/v1/orders?trader=trader1").json()["total"] == 2
    assert client_for(trader).get("/api/v1/orders?book=FXMAIN").status_code == 403


def test_firm_halt_over_trading_state_when_role_lacks_kill_switch_then_403(make_user: Any, client_for: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.get(name="RISK_MANAGER")
    group.permissions.remove(Permission.objects.get(codename="toggle_kill_switch"))
    user = make_user("risk9", "RISK_MANAGER")
    response = client_for(user).post(
        "/api/v1/risk/trading-state", {"scope": "firm", "state": "HALTED", "reason": "r"}, format="json"
    )
    assert response.status_code == 403
    assert RiskState.objects.filter(kill_switch_enabled=True).count() == 0


def test_trader_filter_when_self_then_allowed_and_when_other_then_403(
    trader: Any, trader2: Any, client_for: Any
) -> None:
    client = client_for(trader)
    assert client.get("/api/v1/risk/positions?trader=trader1").status_code == 200
    assert client.get("/api/v1/orders?trader=trader1").status_code == 200
    assert client.get("/api/v1/risk/metrics?trader=trader2").status_code == 403
    assert client.get("/api/v1/orders?trader=trader2").status_code == 403
    assert client.get("/api/v1/risk/positions?book=MAIN&symbol=AAPL").status_code == 400  # one filter at a time
    assert Event.objects.filter(event_type=EventType.PERMISSION_DENIED).count() == 2
