"""Risk services on the real database: fills and the day's volume, limit validation, and position arithmetic."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import Event, EventType
from core.exceptions import InvalidInput
from orders import services as order_services
from risk import checks, services, store
from risk.models import Position, RiskLimits, RiskState
from risk.positions import PositionState, apply_fill


def _book(symbol: str, side: str, quantity: str, order_price: str, fill_price: str, now: dt.datetime) -> Position:
    with transaction.atomic():
        state = store.lock()
        reservation = store.Reservation(
            symbol,
            checks.Side(side),
            Decimal(quantity),
            Decimal(order_price),
            store.OrderScopes.of(desk="EQ", book="MAIN", trader="filler", symbol=symbol),
        )
        store.reserve(state=state, reservations=[reservation])
        return store.fill_book(
            state=state,
            reservation=reservation,
            fill_quantity=reservation.quantity,
            fill_price=Decimal(fill_price),
            now=now,
        )


@pytest.mark.django_db
def test_fill_when_booked_then_position_mark_and_volume_at_the_order_price_and_reservation_released() -> None:
    now = timezone.now()
    _book("AAA", "BUY", "100", "10", "9.5", now)
    position = _book("AAA", "SELL", "40", "11", "11.25", now)
    assert position.quantity == 60 and position.average_price == Decimal("9.5")
    assert position.realized_pnl == Decimal("70")  # 40 * (11.25 - 9.5)
    assert position.mark_price == Decimal("11.25")
    assert (position.open_buy_quantity, position.open_sell_quantity) == (0, 0)
    state = RiskState.objects.get()
    # volume counts the order's limit price (10 and 11), never the fill price: what was checked is what counts
    assert state.executed_volume == Decimal("1000") + Decimal("440")
    assert state.open_volume == 0 and state.trading_day == now.date()


@pytest.mark.django_db
def test_fill_when_first_of_a_new_utc_day_then_volume_restarts_and_reset_recorded() -> None:
    yesterday = timezone.now() - dt.timedelta(days=1)
    _book("AAA", "BUY", "10", "10", "10", yesterday)
    today = timezone.now()
    _book("AAA", "BUY", "5", "10", "10", today)
    state = RiskState.objects.get()
    assert state.trading_day == today.date() and state.executed_volume == Decimal("50")
    reset = Event.objects.get(event_type=EventType.DAILY_VOLUME_RESET)
    assert reset.payload["previous_day"] == yesterday.date().isoformat()
    assert reset.payload["day"] == today.date().isoformat()
    assert Decimal(reset.payload["previous_volume"]) == Decimal("100")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "Must be a positive number."),
        (-1, "Must be a positive number."),
        ("NaN", "A valid number is required."),
        ("Infinity", "A valid number is required."),
        ("abc", "A valid number is required."),
        (True, "A valid number is required."),
        ("0.001", "At most 22 digits before the decimal point and 2 after it."),
        ("1e22", "At most 22 digits before the decimal point and 2 after it."),
    ],
)
def test_limits_validate_when_value_is_bad_then_field_error(value: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        services.limits_validate({"max_daily_volume": value})
    assert info.value.fields == {"max_daily_volume": message}
    assert info.value.status_code == 400


def test_limits_validate_when_unknown_name_then_field_error() -> None:
    with pytest.raises(InvalidInput) as info:
        services.limits_validate({"max_leverage": 3})
    assert info.value.fields == {"max_leverage": "Unknown limit."}


def test_limits_validate_when_values_fine_then_decimals() -> None:
    assert services.limits_validate({"max_net_exposure": "5000000.5", "max_gross_exposure": 7}) == {
        "max_net_exposure": Decimal("5000000.5"),
        "max_gross_exposure": Decimal(7),
    }


@pytest.mark.django_db
def test_limits_update_when_invalid_then_nothing_changed_and_no_event(risk_manager) -> None:
    events = Event.objects.count()
    with pytest.raises(InvalidInput):
        services.risk_limits_update(actor=risk_manager, max_position_size=Decimal(5), max_net_exposure=Decimal(0))
    assert RiskLimits.objects.get(scope="FIRM").max_position_size == Decimal("1000000")
    assert Event.objects.count() == events


@pytest.mark.django_db
def test_controls_update_when_a_limit_is_invalid_then_kill_switch_untouched(risk_manager) -> None:
    with pytest.raises(InvalidInput):
        order_services.controls_update(actor=risk_manager, kill_switch_enabled=True, max_daily_volume=Decimal(-1))
    assert RiskState.objects.get().kill_switch_enabled is False
    assert not Event.objects.filter(event_type=EventType.KILL_SWITCH_ACTIVATED).exists()


S = PositionState
D = Decimal
FILLS = {
    "open long": (S(), "BUY", "10", "5", S(D(10), D(5), D(0))),
    "add to long averages": (S(D(10), D(5)), "BUY", "30", "9", S(D(40), D(8), D(0))),
    "reduce long realises": (S(D(40), D(8)), "SELL", "10", "10", S(D(30), D(8), D(20))),
    "close long": (S(D(30), D(8), D(20)), "SELL", "30", "7", S(D(0), D(0), D(-10))),
    "flip long to short": (S(D(10), D(8)), "SELL", "25", "10", S(D(-15), D(10), D(20))),
    "open short": (S(), "SELL", "10", "5", S(D(-10), D(5), D(0))),
    "cover short realises": (S(D(-10), D(5)), "BUY", "4", "3", S(D(-6), D(5), D(8))),
}


@pytest.mark.parametrize(("start", "side", "quantity", "price", "expected"), FILLS.values(), ids=FILLS.keys())
def test_apply_fill_table(start: PositionState, side: str, quantity: str, price: str, expected: PositionState) -> None:
    assert apply_fill(start, side=side, quantity=D(quantity), price=D(price)) == expected


@pytest.mark.django_db
def test_lock_with_when_no_state_row_yet_then_made_and_the_reads_answered_under_it() -> None:
    # store.lock_with: the lock and the caller's reads in one round trip; on a database where nothing took the
    # lock yet, the firm's row is made first and the reads run again under the lock.
    from core.sql import Statement

    RiskState.objects.all().delete()
    with transaction.atomic():
        state, (rows,) = store.lock_with([Statement("SELECT %s + 1", [41])])
    assert (state.pk, rows) == (store.FIRM_STATE_ID, [(42,)])
    with transaction.atomic():
        again, (rows,) = store.lock_with([Statement("SELECT %s + 1", [1])])
    assert (again.pk, rows, RiskState.objects.count()) == (store.FIRM_STATE_ID, [(2,)], 1)
