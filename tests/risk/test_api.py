"""The risk endpoints through HTTP: metrics, positions, limits and the kill switch, by role and bad input."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import Event, EventType
from orders.models import Order, OrderStatus
from risk import checks, store
from risk.models import RiskLimits, RiskState
from tests.support.market import price

pytestmark = pytest.mark.django_db

LIMITS = "/api/v1/risk/limits"
KILL = "/api/v1/risk/kill-switch"
SEED = {
    "max_position_size": 1000000.0,
    "max_daily_volume": 10000000.0,
    "max_net_exposure": 5000000.0,
    "max_gross_exposure": 15000000.0,
}
NEW = {
    "max_position_size": 2000000,
    "max_daily_volume": 20000000.5,
    "max_net_exposure": 6000000,
    "max_gross_exposure": 16000000,
}
ROLES = ["TRADER", "RISK_MANAGER", "COMPLIANCE", "ADMIN"]
CONTROL_ROLES = ["RISK_MANAGER", "COMPLIANCE", "ADMIN"]


def control_state() -> dict[str, Any]:
    limits = RiskLimits.objects.get(scope="FIRM")
    return {
        "limits": {k: getattr(limits, k) for k in SEED},
        "kill": RiskState.objects.get().kill_switch_enabled,
        "events": Event.objects.count(),
    }


def fill(symbol: str, side: str, quantity: str, price: str) -> None:
    """Book a fill as the execution path does (the venue is out of scope here)."""
    with transaction.atomic():
        state = store.lock()
        reservation = store.Reservation(
            symbol,
            checks.Side(side),
            Decimal(quantity),
            Decimal(price),
            store.OrderScopes.of(desk="EQ", book="MAIN", trader="filler", symbol=symbol),
        )
        store.reserve(state=state, reservations=[reservation])
        store.fill_book(
            state=state,
            reservation=reservation,
            fill_quantity=reservation.quantity,
            fill_price=reservation.price,
            now=timezone.now(),
        )


# --- metrics and positions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_metrics_when_any_role_then_200_with_the_shape_of_api_md(make_user, client_for, role) -> None:
    response = client_for(make_user("u", role)).get("/api/v1/risk/metrics")
    assert response.status_code == 200
    data = response.json()
    assert {
        "net_exposure",
        "gross_exposure",
        "daily_volume",
        "total_positions",
        "largest_position",
        "kill_switch_active",
    } <= set(data)
    assert data["total_positions"] == 0 and data["kill_switch_active"] is False


def test_metrics_when_positions_filled_then_exposures_at_mark_and_volume_of_the_day(trader, client_for) -> None:
    fill("AAA", "BUY", "100", "10")
    fill("BBB", "SELL", "50", "20")
    fill("AAA", "BUY", "100", "12")
    price("AAA", "12")  # positions are valued at the market's price
    price("BBB", "20")
    data = client_for(trader).get("/api/v1/risk/metrics").json()
    # AAA 200 @ mark 12 = 2400; BBB -50 @ 20 = -1000
    assert data["net_exposure"] == 1400 and data["gross_exposure"] == 3400
    assert data["daily_volume"] == 1000 + 1000 + 1200
    assert data["total_positions"] == 2 and data["largest_position"] == 2400


@pytest.mark.parametrize("role", ROLES)
def test_positions_when_any_role_then_200_with_the_shape_of_api_md(make_user, client_for, role) -> None:
    fill("AAA", "BUY", "100", "10")
    fill("AAA", "BUY", "100", "12")
    price("AAA", "12")
    response = client_for(make_user("u", role)).get("/api/v1/risk/positions")
    assert response.status_code == 200
    data = response.json()
    assert data["total_positions"] == 1
    position = data["positions"][0]
    assert {"symbol", "quantity", "average_price", "market_value", "unrealized_pnl"} <= set(position)
    assert (position["symbol"], position["quantity"], position["average_price"]) == ("AAA", 200, 11)
    assert (position["market_value"], position["unrealized_pnl"]) == (2400, 200)


@pytest.mark.parametrize("path", ["/api/v1/risk/metrics", "/api/v1/risk/positions", LIMITS, KILL])
def test_risk_when_no_token_then_401(api, path) -> None:
    response = api.post(path) if path == KILL else api.get(path)
    assert response.status_code == 401


# --- limits ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", CONTROL_ROLES)
def test_get_limits_when_risk_role_then_200_with_the_seed_defaults(make_user, client_for, role) -> None:
    response = client_for(make_user("u", role)).get(LIMITS)
    assert response.status_code == 200
    data = response.json()
    assert {k: data[k] for k in SEED} == SEED
    assert data["kill_switch_enabled"] is False


@pytest.mark.parametrize(("method", "payload"), [("get", None), ("put", NEW), ("patch", {"max_daily_volume": 1})])
def test_limits_when_trader_then_403_and_nothing_changed(trader, client_for, method, payload) -> None:
    client = client_for(trader)
    before = control_state()
    response = getattr(client, method)(LIMITS, payload, format="json")
    assert response.status_code == 403
    after = control_state()
    assert after["limits"] == before["limits"]
    assert Event.objects.filter(event_type=EventType.PERMISSION_DENIED).count() == 1


def test_put_limits_when_valid_then_stored_and_recorded_with_actor_old_and_new(risk_manager, client_for) -> None:
    response = client_for(risk_manager).put(LIMITS, {**NEW, "reason": "quarterly review"}, format="json")
    assert response.status_code == 200, response.content
    assert {k: response.json()[k] for k in NEW} == {k: float(v) for k, v in NEW.items()}
    limits = RiskLimits.objects.get(scope="FIRM")
    assert limits.max_daily_volume == Decimal("20000000.50") and limits.updated_by == risk_manager
    event = Event.objects.get(event_type=EventType.LIMITS_CHANGED)
    assert event.actor_username == "risk1" and event.order_id is None
    assert event.payload["reason"] == "quarterly review"
    assert event.payload["old"]["max_position_size"] == "1000000.00"
    assert event.payload["new"]["max_position_size"] == "2000000.00"
    assert event.payload["changed"]["max_daily_volume"] == {"old": "10000000.00", "new": "20000000.50"}


def test_patch_limits_when_one_field_then_only_that_field_changes(risk_manager, client_for) -> None:
    response = client_for(risk_manager).patch(LIMITS, {"max_net_exposure": "4000000"}, format="json")
    assert response.status_code == 200
    data = response.json()
    assert data["max_net_exposure"] == 4000000 and data["max_position_size"] == SEED["max_position_size"]
    event = Event.objects.get(event_type=EventType.LIMITS_CHANGED)
    assert list(event.payload["changed"]) == ["max_net_exposure"]


def test_patch_limits_when_limit_lowered_then_next_order_is_checked_against_it(
    trader, risk_manager, client_for
) -> None:
    client_for(risk_manager).patch(LIMITS, {"max_position_size": 1000}, format="json")
    response = client_for(trader).post(
        "/api/v1/orders", {"symbol": "AAPL", "side": "BUY", "quantity": 11, "price": 100}, format="json"
    )
    assert response.json()["message"] == "Risk violations: POSITION_LIMIT"


BAD_LIMITS: dict[str, tuple[str, Any, str]] = {
    "PUT missing a field": ("put", {k: v for k, v in NEW.items() if k != "max_net_exposure"}, "max_net_exposure"),
    "PUT zero": ("put", {**NEW, "max_position_size": 0}, "max_position_size"),
    "PUT negative": ("put", {**NEW, "max_gross_exposure": -1}, "max_gross_exposure"),
    "PATCH zero": ("patch", {"max_daily_volume": 0}, "max_daily_volume"),
    "PATCH negative": ("patch", {"max_net_exposure": "-0.01"}, "max_net_exposure"),
    "PATCH text": ("patch", {"max_net_exposure": "lots"}, "max_net_exposure"),
    "PATCH NaN": ("patch", {"max_net_exposure": "NaN"}, "max_net_exposure"),
    "PATCH Infinity": ("patch", {"max_net_exposure": "Infinity"}, "max_net_exposure"),
    "PATCH bool": ("patch", {"max_net_exposure": True}, "max_net_exposure"),
    "PATCH null": ("patch", {"max_net_exposure": None}, "max_net_exposure"),
    "PATCH too many decimals": ("patch", {"max_net_exposure": "1.001"}, "max_net_exposure"),
    "PATCH too large": ("patch", {"max_net_exposure": "1" + "0" * 22}, "max_net_exposure"),
    "PATCH unknown field": ("patch", {"max_order_size": 5}, "max_order_size"),
    "PATCH a JSON array": ("patch", [NEW], "body"),
    "PATCH zero with the kill switch": (
        "patch",
        {"max_position_size": 0, "kill_switch_enabled": True},
        "max_position_size",
    ),
    "PUT negative with the kill switch": (
        "put",
        {**NEW, "max_net_exposure": -5, "kill_switch_enabled": True},
        "max_net_exposure",
    ),
}


@pytest.mark.parametrize(("method", "payload", "field"), BAD_LIMITS.values(), ids=BAD_LIMITS.keys())
def test_limits_when_invalid_then_400_naming_the_field_and_nothing_changed(
    risk_manager, client_for, method, payload, field
) -> None:
    client = client_for(risk_manager)
    before = control_state()
    response = getattr(client, method)(LIMITS, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in {entry["field"] for entry in response.json()["detail"]}, response.json()
    assert control_state() == before, "a refused change changes nothing: no limit, no kill switch, no event"


def test_put_limits_when_kill_switch_included_then_switched_and_recorded_with_the_limits(
    trader, risk_manager, client_for
) -> None:
    order_id = (
        client_for(trader)
        .post("/api/v1/orders", {"symbol": "AAPL", "side": "BUY", "quantity": 1, "price": 1}, format="json")
        .json()["order_id"]
    )
    response = client_for(risk_manager).put(LIMITS, {**NEW, "kill_switch_enabled": True}, format="json")
    assert response.status_code == 200 and response.json()["kill_switch_enabled"] is True
    assert Order.objects.get(pk=order_id).status == OrderStatus.CANCELLED
    types = list(Event.objects.filter(actor_username="risk1").values_list("event_type", flat=True))
    assert types[-3:] == ["KILL_SWITCH_ACTIVATED", "ORDER_CANCELLED", "LIMITS_CHANGED"]


# --- kill switch -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "enabled"), [("true", True), ("True", True), ("1", True)])
def test_kill_switch_when_query_turns_it_on_then_200_and_recorded(risk_manager, client_for, raw, enabled) -> None:
    response = client_for(risk_manager).post(f"{KILL}?enabled={raw}")
    assert response.status_code == 200
    data = response.json()
    assert data["kill_switch_enabled"] is enabled and data["message"] == "Kill switch activated"
    assert data["timestamp"].endswith("Z")
    assert RiskState.objects.get().kill_switch_enabled is enabled
    assert Event.objects.get(event_type=EventType.KILL_SWITCH_ACTIVATED).actor_username == "risk1"


@pytest.mark.parametrize("raw", ["false", "False", "0"])
def test_kill_switch_when_query_turns_it_off_then_200_and_recorded(risk_manager, client_for, raw) -> None:
    client = client_for(risk_manager)
    client.post(f"{KILL}?enabled=1")
    response = client.post(f"{KILL}?enabled={raw}")
    assert response.status_code == 200
    assert response.json()["kill_switch_enabled"] is False
    assert response.json()["message"] == "Kill switch deactivated"
    assert Event.objects.filter(event_type=EventType.KILL_SWITCH_DEACTIVATED).count() == 1


def test_kill_switch_when_body_has_enabled_and_reason_then_reason_recorded(risk_manager, client_for) -> None:
    response = client_for(risk_manager).post(KILL, {"enabled": True, "reason": "venue outage"}, format="json")
    assert response.status_code == 200
    state = RiskState.objects.get()
    assert state.kill_switch_enabled and state.kill_switch_reason == "venue outage"
    assert state.kill_switch_changed_by == risk_manager
    assert Event.objects.get(event_type=EventType.KILL_SWITCH_ACTIVATED).payload["reason"] == "venue outage"


def test_kill_switch_when_query_and_body_reason_then_reason_from_the_body(risk_manager, client_for) -> None:
    client_for(risk_manager).post(f"{KILL}?enabled=true", {"reason": "fat finger"}, format="json")
    assert RiskState.objects.get().kill_switch_reason == "fat finger"


def test_kill_switch_when_turned_on_then_open_orders_cancelled_and_new_orders_rejected(
    trader, risk_manager, client_for
) -> None:
    trading = client_for(trader)
    ids = [
        trading.post("/api/v1/orders", {"symbol": s, "side": "BUY", "quantity": 1, "price": 1}, format="json").json()[
            "order_id"
        ]
        for s in ("AAA", "BBB")
    ]
    response = client_for(risk_manager).post(f"{KILL}?enabled=true&reason=halt")
    assert response.json()["cancelled_orders"] == 2
    switch = Event.objects.get(event_type=EventType.KILL_SWITCH_ACTIVATED)
    for order_id in ids:
        assert Order.objects.get(pk=order_id).status == OrderStatus.CANCELLED
        cancel = Event.objects.get(order_id=order_id, event_type=EventType.ORDER_CANCELLED)
        assert cancel.causation_id == switch.event_id
    rejected = trading.post(
        "/api/v1/orders", {"symbol": "CCC", "side": "BUY", "quantity": 1, "price": 1}, format="json"
    )
    assert rejected.json()["status"] == "REJECTED"
    assert RiskState.objects.get().open_volume == 0


BAD_SWITCH: dict[str, tuple[str, Any]] = {
    "query yes": (f"{KILL}?enabled=yes", None),
    "query empty": (f"{KILL}?enabled=", None),
    "no enabled at all": (KILL, {}),
    "enabled text": (KILL, {"enabled": "maybe"}),
    "enabled null": (KILL, {"enabled": None}),
    "reason too long": (KILL, {"enabled": True, "reason": "r" * 1001}),
    "reason too long with the query": (f"{KILL}?enabled=true", {"reason": "r" * 1001}),
    "a JSON array": (KILL, [True]),
    "a JSON array with the query": (f"{KILL}?enabled=true", ["halt"]),
}


@pytest.mark.parametrize(("url", "payload"), BAD_SWITCH.values(), ids=BAD_SWITCH.keys())
def test_kill_switch_when_input_is_invalid_then_400_and_nothing_changed(risk_manager, client_for, url, payload) -> None:
    client = client_for(risk_manager)
    before = control_state()
    response = client.post(url, payload, format="json") if payload is not None else client.post(url)
    assert response.status_code == 400, response.content
    assert control_state() == before


def test_kill_switch_when_trader_then_403_and_switch_unchanged(trader, client_for) -> None:
    response = client_for(trader).post(f"{KILL}?enabled=true")
    assert response.status_code == 403
    assert RiskState.objects.get().kill_switch_enabled is False
    assert not Event.objects.filter(event_type=EventType.KILL_SWITCH_ACTIVATED).exists()
