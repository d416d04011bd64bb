"""Metrics: /metrics (Prometheus text, multi-process) moves with orders; GET /api/v1/metrics counts exactly."""

from __future__ import annotations

import os

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from audit.models import Event
from core import metrics
from orders import execution
from orders.models import Order, OrderStatus
from orders.services import kill_switch_set
from orders.venue import Execution
from tests.observability.conftest import sample, scrape, submit

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def fill(order: Order) -> Execution:
    return Execution(venue="SIMULATED", venue_execution_id=f"x-{order.pk}", quantity=order.quantity, price=order.price)


def make_orders_in_every_state(trader, risk_manager) -> dict[str, Order]:
    """Orders that end EXECUTED, FAILED, CANCELLED, REJECTED (limits and kill switch), or stay APPROVED/EXECUTING."""
    from orders.services import order_cancel

    orders = {name: submit(trader, quantity=q) for name, q in (("executed", "1"), ("failed", "2"), ("cancelled", "3"))}
    orders["approved"] = submit(trader, quantity="4")
    orders["executing"] = submit(trader, quantity="5")
    orders["rejected"] = submit(trader, quantity="100000000")
    execution.execution_start(order_id=orders["executed"].pk)
    execution.execution_complete(order_id=orders["executed"].pk, fill=fill(orders["executed"]))
    execution.execution_start(order_id=orders["failed"].pk)
    execution.execution_attempt_failed(order_id=orders["failed"].pk, reason="Venue timeout", attempt=1, retry=True)
    execution.execution_fail(order_id=orders["failed"].pk, reason="Venue down")
    order_cancel(actor=trader, order_id=orders["cancelled"].pk, reason="changed my mind")
    execution.execution_start(order_id=orders["executing"].pk)
    kill_switch_set(actor=risk_manager, enabled=True, reason="drill")  # cancels "approved" too
    orders["halted"] = submit(trader, quantity="6")
    kill_switch_set(actor=risk_manager, enabled=False, reason="drill over")
    orders["approved"] = submit(trader, quantity="7")
    return orders


def truth() -> dict:
    breakdown = {status: 0 for status in OrderStatus.values}
    breakdown.update(dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by()))
    return {"total_orders": Order.objects.count(), "total_events": Event.objects.count(), "breakdown": breakdown}


@pytest.mark.django_db
def test_api_metrics_when_orders_in_every_state_then_counts_equal_the_tables(
    client_for, trader, risk_manager, no_enqueue, settings
):
    settings.METRICS_COUNT_SETTLE_SECONDS = 0  # the mark may pass every event at once
    make_orders_in_every_state(trader, risk_manager)
    client = client_for(trader)
    body = client.get("/api/v1/metrics").json()
    expected = truth()
    assert set(body) == {
        "total_orders",
        "total_events",
        "order_status_breakdown",
        "circuit_breaker",
        "risk_metrics",
        "timestamp",
    }
    assert body["order_status_breakdown"] == expected["breakdown"]
    assert (body["total_orders"], body["total_events"]) == (expected["total_orders"], expected["total_events"])
    assert {k: v for k, v in expected["breakdown"].items() if v} == {
        "EXECUTED": 1,
        "FAILED": 1,
        "CANCELLED": 2,
        "REJECTED": 2,
        "EXECUTING": 1,
        "APPROVED": 1,
    }
    assert set(body["circuit_breaker"]) == {"status", "failures", "open_until"}
    assert body["risk_metrics"]["total_positions"] == 1

    # Later calls count only what came after the mark, and stay exact.
    mark = Event.objects.order_by("-sequence").values_list("sequence", flat=True)[0]
    submit(trader, quantity="8")
    with CaptureQueriesContext(connection) as queries:
        body = client.get("/api/v1/metrics").json()
    expected = truth()
    assert body["order_status_breakdown"] == expected["breakdown"] and body["total_events"] == expected["total_events"]
    counting = [q["sql"] for q in queries.captured_queries if "WITH tail AS" in q["sql"]]
    assert len(counting) == 1 and f"WHERE sequence > {mark}" in counting[0]
    assert not [q for q in queries.captured_queries if 'COUNT(*) AS "__count" FROM "audit_event"' in q["sql"]]


@pytest.mark.django_db
def test_api_metrics_when_events_are_recent_then_mark_waits_and_counts_stay_exact(client_for, trader, no_enqueue):
    client = client_for(trader)
    for quantity in ("1", "2"):
        submit(trader, quantity=quantity)
        body = client.get("/api/v1/metrics").json()
        assert body["total_orders"] == Order.objects.count() and body["total_events"] == Event.objects.count()
    # Every event is younger than METRICS_COUNT_SETTLE_SECONDS: none is frozen into the cached counts yet.
    from django.core.cache import cache

    state = cache.get("itirp:metrics:event-counts:v1")
    assert state["counts"] == {} and state["mark"] < min(Event.objects.values_list("sequence", flat=True))


# transaction=True: event lines and metrics are emitted when the change commits (audit.services)
@pytest.mark.django_db(transaction=True)
def test_prometheus_when_orders_submitted_rejected_cancelled_then_metrics_move(
    client_for, trader, risk_manager, no_enqueue
):
    client = client_for(trader)
    before = scrape(client)
    body = {"symbol": "MSFT", "side": "BUY", "quantity": "1", "price": "10"}
    approved = client.post("/api/v1/orders", body, format="json")
    rejected = client.post("/api/v1/orders", {**body, "quantity": "100000000"}, format="json")
    assert (approved.json()["status"], rejected.json()["status"]) == ("APPROVED", "REJECTED")
    client.post(f"/api/v1/orders/{approved.json()['order_id']}/cancel", {}, format="json")
    kill_switch_set(actor=risk_manager, enabled=True, reason="drill")
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    violations = Event.objects.get(order_id=rejected.json()["order_id"], event_type="RISK_CHECK_FAILED").payload
    assert violations["violations"]
    assert delta("itirp_orders_submitted_total") == 2
    assert delta("itirp_orders_total", status="REJECTED") == 1
    assert delta("itirp_orders_total", status="CANCELLED") == 1
    for violation in violations["violations"]:
        assert delta("itirp_limit_violations_total", type=violation["code"]) == 1
    assert delta("itirp_order_submission_seconds_count", status="200") == 2
    assert delta("itirp_risk_decision_seconds_count", decision="approved") == 1
    assert delta("itirp_risk_decision_seconds_count", decision="rejected") == 1
    assert delta("itirp_events_appended_total", event_type="ORDER_CREATED") == 2
    assert delta("itirp_events_appended_total", event_type="KILL_SWITCH_ACTIVATED") == 1
    assert delta("itirp_http_request_seconds_count", method="POST", view="orders", status="2xx") == 2
    # Gauges read at scrape time.
    assert (sample(before, "itirp_kill_switch_active"), sample(after, "itirp_kill_switch_active")) == (0, 1)
    assert sample(after, "itirp_circuit_breaker_state", state="CLOSED") == 1
    assert ("itirp_queue_depth", frozenset()) in after
    assert sample(after, "itirp_scrape_source_up", source="broker") == 1


@pytest.mark.django_db
def test_prometheus_when_token_or_networks_set_then_only_allowed_scrapers_read(api, settings):
    assert api.get("/metrics").status_code == 200  # neither set: open
    settings.METRICS_TOKEN = "scrape-secret"
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert api.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "192.168.0.0/16"]
    assert api.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.0/8"]
    assert api.get("/metrics").status_code == 200
    settings.METRICS_TOKEN = "scrape-secret"
    assert api.get("/metrics").status_code == 401  # both set: both required
    assert api.post("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 405


def test_multiproc_dir_prepare_when_files_of_dead_processes_then_only_those_of_this_host_removed(tmp_path, settings):
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    host = metrics.process_identifier(0).rsplit("-", 1)[0]
    dead = 2**22 + 12345  # above pid_max: never a live process
    names = {
        "dead": f"counter_{host}-{dead}.db",
        "live": f"counter_{host}-{os.getpid()}.db",
        "other_host": f"histogram_otherbox-{dead}.db",
        "gauge_dead": f"gauge_livesum_{host}-{dead}.db",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"")
    removed = metrics.multiproc_dir_prepare()
    assert sorted(removed) == sorted([names["dead"], names["gauge_dead"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["live"], names["other_host"]])


def test_events_appended_when_rejected_by_kill_switch_then_violation_kill_switch_counted():
    class E:
        event_type = "RISK_CHECK_FAILED"
        payload = {"kill_switch": True, "violations": []}

    before = metrics.LIMIT_VIOLATIONS.labels("KILL_SWITCH")._value.get()
    metrics.events_appended([E()])
    assert metrics.LIMIT_VIOLATIONS.labels("KILL_SWITCH")._value.get() == before + 1


def test_process_identifier_when_asked_again_then_the_same_string_until_the_pid_changes(monkeypatch):
    # prometheus_client asks for it on every update of every metric: kept, not formatted each time.
    first = metrics.process_identifier()
    assert metrics.process_identifier() is first and first.endswith(f"-{os.getpid()}")
    monkeypatch.setattr(metrics.os, "getpid", lambda: 4242)  # what a forked child sees
    assert metrics.process_identifier().endswith("-4242")
    assert metrics.process_identifier(17).endswith("-17")
