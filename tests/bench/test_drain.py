"""make bench's drain waits for the work the worker owes: orders resting at the venue until the market reaches
their limit are not owed (bench/cost.py unexecuted), or a run with the feed moving prices never drains."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from audit.models import EventType
from audit.services import EventSpec, events_record
from orders.models import Order, OrderStatus
from orders.submission import OrderRequest, order_submit


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # committed: the bench reads through a connection of its own
def test_unexecuted_when_an_order_rests_at_the_venue_then_only_the_owed_ones_count(
    cost: Any, trader: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("orders.submission.enqueue", lambda *args, **kwargs: False)  # no worker here
    waiting, resting, executing, done = (
        order_submit(
            user=trader, request=OrderRequest(symbol="AAPL", side="BUY", quantity=Decimal(n), price=Decimal("100"))
        )[0]
        for n in range(1, 5)  # not duplicates of one another
    )
    Order.objects.filter(pk=executing.pk).update(status=OrderStatus.EXECUTING)
    Order.objects.filter(pk=done.pk).update(status=OrderStatus.EXECUTED)
    database = connection.settings_dict["NAME"]
    assert cost.unexecuted(database) == 3

    with transaction.atomic():  # what the execution records when the market has not reached the limit
        events_record(specs=[EventSpec(EventType.ORDER_RESTING, {"reason": "not marketable"}, order_id=resting.pk)])

    assert cost.unexecuted(database) == 2  # the waiting one and the one at the venue call
    assert cost.orders_counted(database, ("APPROVED",)) == 2  # still APPROVED, both
