"""OrderIn's fields made once per thread: the same answers as fresh fields, no shared field between threads."""

from __future__ import annotations

import copy
import threading
from decimal import Decimal

import pytest

from orders.serializers import OrderIn

GOOD = {"symbol": "aapl", "side": "BUY", "quantity": "10", "price": "150.5", "client_order_id": "c-1"}
BAD = {"symbol": "", "side": "HOLD", "quantity": "-1", "price": "NaN", "book": 3, "order_type": "MARKET"}


def _answers(data: dict[str, object]) -> tuple[bool, object]:
    serializer = OrderIn(data=data)
    valid = serializer.is_valid()
    return valid, (serializer.validated_data if valid else serializer.errors)


def test_order_in_when_validated_again_in_a_thread_then_the_answers_of_fresh_fields() -> None:
    first_good, first_bad = _answers(GOOD), _answers(BAD)
    for _ in range(3):  # the thread's later instances reuse its fields
        assert _answers(GOOD) == first_good
        assert _answers(BAD) == first_bad
    assert first_good == (
        True,
        {
            "symbol": "AAPL",
            "side": "BUY",
            "quantity": Decimal("10"),
            "price": Decimal("150.5"),
            "strategy": "default",
            "client_order_id": "c-1",
            "book": None,
            "venue": "SIM",
            "order_type": "LIMIT",
            "time_in_force": "DAY",
        },
    )
    assert set(first_bad[1]) == {"symbol", "side", "quantity", "price", "book"}  # type: ignore[arg-type]


def test_order_in_when_a_later_instance_then_fields_not_copied_and_bound_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    OrderIn(data=GOOD).is_valid()  # this thread's fields exist
    copies = []
    real = copy.deepcopy
    monkeypatch.setattr(copy, "deepcopy", lambda *a, **k: copies.append(1) or real(*a, **k))
    serializer = OrderIn(data=GOOD)
    assert serializer.is_valid()
    assert copies == []
    assert all(field.parent is serializer and field.field_name == name for name, field in serializer.fields.items())


def test_order_in_when_two_threads_then_each_its_own_field_objects() -> None:
    seen: list[set[int]] = []

    def validate() -> None:
        serializer = OrderIn(data=GOOD)
        serializer.is_valid()
        seen.append({id(field) for field in serializer.fields.values()})

    validate()
    worker = threading.Thread(target=validate)
    worker.start()
    worker.join()
    assert len(seen) == 2 and not seen[0] & seen[1]
