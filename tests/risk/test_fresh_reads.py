"""A decision that waited for the risk lock reads what the lock's previous holder committed (PostgreSQL).

Thread A holds the risk lock and, in the same transaction, lowers the firm limits (or grows a position's open
orders); thread B submits, outside any transaction, an order that fits the old state and not the new one, and
waits for the lock. A commits; B must be decided on A's state and rejected.

Why this fails on the old code: the firm limits were read by a subquery of the SELECT ... FOR UPDATE that
takes the lock. In READ COMMITTED a statement's snapshot is taken when it starts, before it waits for the row
lock; when the lock is granted PostgreSQL re-reads the locked row itself (EvalPlanQual), but not the
subquery, so B checked its order against the limits A had just replaced and approved it.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from orders.models import Order, OrderStatus
from orders.submission import OrderRequest, order_submit
from risk import services as risk_services
from risk import store
from risk.checks import Violation
from risk.models import Position, RiskLimits, RiskState

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WAIT = 20  # seconds: the bound of every wait on another thread


def _waiting_for_a_lock() -> bool:
    """Another backend of this database waits for a lock in the statement that takes the risk lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND wait_event_type = 'Lock' AND query ILIKE %s",
            ["%FOR UPDATE%"],
        )
        return cursor.fetchone()[0] > 0


def _race(holder_change: Any, request: OrderRequest, user: Any) -> dict[str, Any]:
    """A takes the lock and makes `holder_change`; B submits `request` and blocks; A commits; B's answer."""
    locked, commit = threading.Event(), threading.Event()
    found: dict[str, Any] = {}

    def holder() -> None:
        try:
            with transaction.atomic():
                store.lock()
                holder_change()
                locked.set()
                if not commit.wait(WAIT):
                    raise TimeoutError("never told to commit")
        except BaseException as exc:  # reported below
            found["holder_error"] = exc
        finally:
            connection.close()

    def submitter() -> None:
        try:
            found["result"] = order_submit(user=user, request=request)
        except BaseException as exc:  # reported below
            found["submit_error"] = exc
        finally:
            connection.close()

    a = threading.Thread(target=holder)
    b = threading.Thread(target=submitter)
    a.start()
    try:
        assert locked.wait(WAIT), found
        b.start()
        deadline = time.monotonic() + WAIT
        while not _waiting_for_a_lock():  # B is blocked on the lock A holds: B cannot have read anything yet
            assert b.is_alive(), f"B was decided while A held the lock: {found}"
            assert time.monotonic() < deadline, "B never waited for the risk lock"
            time.sleep(0.01)
    finally:
        commit.set()
        a.join(timeout=WAIT)
        if b.ident is not None:
            b.join(timeout=WAIT)
    assert not a.is_alive() and not b.is_alive(), "a thread did not finish"
    assert "holder_error" not in found and "submit_error" not in found, found
    return found


def _limits(actor: Any, **tight: Decimal) -> None:
    """Firm limits wide open but for the one the test is about."""
    wide = dict.fromkeys(store.LIMIT_FIELDS, Decimal(1_000_000))
    risk_services.risk_limits_update(actor=actor, **{**wide, **tight})


def test_submission_when_the_lock_holder_lowered_the_limits_then_the_waiting_order_sees_them_and_is_rejected(
    trader, risk_manager, _purge_queue
) -> None:
    _limits(risk_manager, max_daily_volume=Decimal(10_000))
    request = OrderRequest(symbol="FRSH", side="BUY", quantity=Decimal(10), price=Decimal(100))  # 1,000: fits

    def lower() -> None:
        assert RiskLimits.objects.filter(scope="FIRM", scope_key="").update(max_daily_volume=Decimal(500)) == 1

    found = _race(lower, request, trader)

    order, decision = found["result"]
    assert decision.violations == (Violation.DAILY_VOLUME_LIMIT,), "decided on the limits from before the wait"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REJECTED
    assert RiskLimits.objects.get(scope="FIRM").max_daily_volume == Decimal(500)
    assert RiskState.objects.get().open_volume == 0


def test_submission_when_the_lock_holder_grew_the_symbols_open_orders_then_the_waiting_order_sees_them(
    trader, risk_manager, _purge_queue
) -> None:
    _limits(risk_manager, max_position_size=Decimal(1_500))
    Position.objects.create(symbol="FRSH")
    request = OrderRequest(symbol="FRSH", side="BUY", quantity=Decimal(10), price=Decimal(100))  # 1,000: fits

    def reserve() -> None:  # what an order approved by A would have reserved: 10 @ 100 more open buys
        Position.objects.filter(scope="firm", symbol="FRSH").update(open_buy_quantity=10, open_buy_notional=1000)

    found = _race(reserve, request, trader)

    order, decision = found["result"]
    assert Violation.POSITION_LIMIT in decision.violations, "decided on the positions from before the wait"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REJECTED
