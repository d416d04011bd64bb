"""POST /orders' authentication read under the risk lock (accounts.authentication.JWTAuthentication, `put_off_for`).

A process that has read a user lets the user's next submission in on that reading and puts the query off to the
batch, which runs it under the risk lock in the round trip it makes anyway. Whatever changed in between (a
deactivation, a logout, a role taken away, a renamed user) is seen there: the order is not decided on the old
reading but authenticated again, answered 401 or 403 as any request, or decided for the user as now read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from accounts import authentication, services
from accounts.authentication import _auth_sql
from accounts.models import User
from audit.models import Event, EventType
from orders.models import Order
from orders.submission import orders_decide
from tests.orders.conftest import body, submission
from tests.support.connections import round_trips

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

URL = "/api/v1/orders"


@pytest.fixture
def client(client_for: Any, trader: User) -> APIClient:
    client = client_for(trader)
    first = client.post(URL, body(client_order_id="first"), format="json")  # the process reads the user
    assert first.status_code == 200 and first.json()["status"] == "APPROVED"
    return client


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    return round_trips(monkeypatch)


def assert_as_the_query_answers(client: APIClient, answer: Any, **changes: Any) -> None:
    """The same submission, by a process that has never read the user (the query at the request's start),
    answers the same: status, body but for the request's own ids, and the WWW-Authenticate header."""
    authentication.forget_last_read()
    again = client.post(URL, body(client_order_id="second", **changes), format="json")
    assert again.status_code == answer.status_code
    assert again.get("WWW-Authenticate") == answer.get("WWW-Authenticate")
    assert _without_ids(again.json()) == _without_ids(answer.json())


def _without_ids(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_ids(v) for k, v in data.items() if k not in {"correlation_id", "request_id"}}
    return data


def test_submit_when_the_process_has_read_the_user_then_the_query_runs_under_the_lock_and_no_trip_of_its_own(
    client: APIClient, trips: list[list[str]]
) -> None:
    response = client.post(URL, body(client_order_id="second"), format="json")

    assert response.status_code == 200 and response.json()["status"] == "APPROVED"
    # the lock and its reads, the user's query among them; then the writes
    assert len(trips) == 2
    assert "FOR UPDATE" in trips[0][0] and _auth_sql() in trips[0]


def test_submit_when_the_user_was_deactivated_since_the_reading_then_401_and_no_order(
    client: APIClient, trader: User
) -> None:
    User.objects.filter(pk=trader.pk).update(is_active=False)  # no signal, no service: only the row changes
    orders = Order.objects.count()

    response = client.post(URL, body(client_order_id="second"), format="json")

    assert response.status_code == 401
    assert Order.objects.count() == orders
    assert Event.objects.filter(event_type=EventType.TOKEN_REFUSED).count() == 1  # recorded once, as by the query
    assert_as_the_query_answers(client, response)


def test_submit_when_the_session_was_logged_out_since_the_reading_then_401_and_no_order(client: APIClient) -> None:
    logout = client.post("/api/v1/auth/logout", {"refresh_token": client.tokens["refresh_token"]}, format="json")  # type: ignore[attr-defined]
    assert logout.status_code == 200
    orders = Order.objects.count()

    response = client.post(URL, body(client_order_id="second"), format="json")

    assert response.status_code == 401
    assert Order.objects.count() == orders
    assert_as_the_query_answers(client, response)


def test_submit_when_the_role_was_taken_away_since_the_reading_then_403_and_no_order(
    client: APIClient, trader: User
) -> None:
    trader.groups.clear()
    orders = Order.objects.count()

    response = client.post(URL, body(client_order_id="second"), format="json")

    assert response.status_code == 403
    assert Order.objects.count() == orders
    assert Event.objects.filter(event_type=EventType.PERMISSION_DENIED).count() == 1
    assert_as_the_query_answers(client, response)


def test_submit_when_the_role_was_given_since_a_refusal_then_the_next_order_is_decided(
    client_for: Any, make_user: Any
) -> None:
    viewer = make_user("feed1", "MARKET_DATA")
    client = client_for(viewer)
    assert client.post(URL, body(), format="json").status_code == 403  # a reading without the permission

    viewer.groups.add(Group.objects.get(name="TRADER"))

    assert client.post(URL, body(), format="json").status_code == 200


def test_submit_when_the_user_was_renamed_since_the_reading_then_decided_once_for_the_user_as_now_read(
    client: APIClient, trader: User
) -> None:
    User.objects.filter(pk=trader.pk).update(username="trader1-renamed")
    orders = Order.objects.count()

    response = client.post(URL, body(client_order_id="second"), format="json")

    assert response.status_code == 200 and response.json()["status"] == "APPROVED"
    assert Order.objects.count() == orders + 1
    created = Event.objects.get(order_id=response.json()["order_id"], event_type=EventType.ORDER_CREATED)
    assert created.actor_username == "trader1-renamed"


def test_submit_when_deactivated_through_the_service_then_refused_at_once(client: APIClient, trader: User) -> None:
    services.user_deactivate(actor=None, user=trader, reason="test")

    assert client.post(URL, body(client_order_id="second"), format="json").status_code == 401


def test_submit_when_throttled_after_a_deactivation_then_401_as_before_and_no_refusal_recorded(
    client: APIClient, trader: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orders import apis

    monkeypatch.setattr(apis.OrderSubmitThrottle, "THROTTLE_RATES", {"orders": "1/min"})  # the first one is spent
    User.objects.filter(pk=trader.pk).update(is_active=False)

    response = client.post(URL, body(client_order_id="second"), format="json")

    assert response.status_code == 401
    assert not Event.objects.filter(event_type=EventType.ORDER_REFUSED).exists()


@pytest.mark.parametrize("bad", [{"quantity": "-1"}, {"book": "NO-SUCH-BOOK"}], ids=["invalid input", "unknown book"])
def test_submit_when_refused_before_submitting_after_a_deactivation_then_401_as_before(
    client: APIClient, trader: User, bad: dict[str, str]
) -> None:
    User.objects.filter(pk=trader.pk).update(is_active=False)

    response = client.post(URL, body(client_order_id="second", **bad), format="json")

    assert response.status_code == 401
    assert Event.objects.filter(event_type=EventType.TOKEN_REFUSED).count() == 1
    assert_as_the_query_answers(client, response, **bad)


def test_submit_when_refused_before_submitting_by_a_user_as_read_then_the_same_400(client: APIClient) -> None:
    response = client.post(URL, body(client_order_id="second", quantity="-1"), format="json")

    assert response.status_code == 400
    assert_as_the_query_answers(client, response, quantity="-1")


def test_decide_when_a_batch_holds_several_orders_of_one_reading_then_its_query_runs_once(
    client: APIClient, trader: User, trips: list[list[str]]
) -> None:
    row = authentication._last_read.get(trader.pk)
    assert row is not None  # the fixture's first order read the user
    reading = authentication.Unverified(trader.pk, "a-jti", "a-session", row)
    batch = [
        dataclasses.replace(
            submission(trader, symbol="AAPL", quantity=1, price=150, client_order_id=f"batch-{n}"), unverified=reading
        )
        for n in range(3)
    ]

    outcomes = orders_decide(batch)

    assert [outcome[1].approved for outcome in outcomes] == [True, True, True]  # type: ignore[index]
    assert trips[0].count(_auth_sql()) == 1


def test_openapi_schema_documents_the_submission_as_bearer_authenticated_like_every_call(
    client_for: Any, admin_user: User
) -> None:
    schema = client_for(admin_user).get("/api/schema/?format=json")

    assert schema.status_code == 200
    orders = schema.json()["paths"]["/api/v1/orders/"]
    assert orders["post"]["security"] == orders["get"]["security"] == [{"bearerAuth": []}]
