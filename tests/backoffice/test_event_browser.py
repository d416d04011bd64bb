"""The compliance event browser: exact-UUID search, indexed filters, no full COUNT(*), trails, exports."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import Event

pytestmark = pytest.mark.django_db


def _body(response: Any) -> str:
    return b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()


def _shown(response: Any) -> list[Event]:
    return list(response.context["cl"].result_list)


def test_search_when_order_id_then_its_events_only(compliance: Any, staff_client: Any, open_order: Any) -> None:
    client = staff_client(compliance)
    shown = _shown(client.get("/admin/audit/event/", {"q": str(open_order.pk)}))
    assert {e.event_type for e in shown} == {"ORDER_CREATED", "RISK_CHECK_STARTED", "RISK_CHECK_PASSED"}
    # the short id the list shows is a prefix search (issue 18.4; tests/audit_workbench)
    assert {e.order_id for e in _shown(client.get("/admin/audit/event/", {"q": str(open_order.pk)[:8]}))} == {
        open_order.pk
    }
    by_correlation = _shown(client.get("/admin/audit/event/", {"q": str(open_order.correlation_id)}))
    assert {e.order_id for e in by_correlation} == {open_order.pk}


def test_filters_when_type_user_symbol_then_narrowed_and_newest_first(
    compliance: Any, staff_client: Any, open_order: Any
) -> None:
    client = staff_client(compliance)
    shown = _shown(client.get("/admin/audit/event/", {"user": "trader1", "symbol": "aapl"}))
    assert [e.event_type for e in shown] == ["RISK_CHECK_PASSED", "RISK_CHECK_STARTED", "ORDER_CREATED"]
    assert _shown(client.get("/admin/audit/event/", {"event_type": "USER_CREATED", "user": "trader1"})) == []
    assert len(_shown(client.get("/admin/audit/event/", {"event_type": "USER_CREATED"}))) == 2
    today = open_order.created_at
    dated = client.get(
        "/admin/audit/event/",
        {"timestamp__year": today.year, "timestamp__month": today.month, "timestamp__day": today.day},
    )
    assert len(_shown(dated)) == Event.objects.count()


@pytest.mark.postgres
def test_event_list_when_rendered_then_no_unbounded_count(compliance: Any, staff_client: Any, open_order: Any) -> None:
    client = staff_client(compliance)
    for params in ({}, {"event_type": "ORDER_CREATED"}, {"user": "trader1"}, {"q": str(open_order.pk)}):
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/admin/audit/event/", params).status_code == 200
        counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "audit_event" in q["sql"]]
        assert counts, "the page shows a count"
        assert all("LIMIT" in sql.upper() for sql in counts), counts
        assert not any("DISTINCT" in q["sql"].upper() for q in queries if "audit_event" in q["sql"])


@pytest.mark.postgres
def test_paginator_when_table_large_then_estimate_from_pg_class(compliance: Any, staff_client: Any) -> None:
    from audit import admin as audit_admin

    rows = [
        Event(event_type="LOGIN_FAILED", correlation_id=uuid.uuid4(), payload={"n": i})
        for i in range(audit_admin.COUNT_CAP + 5)
    ]
    Event.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_event")
    client = staff_client(compliance)
    page = client.get("/admin/audit/event/")
    assert "about " in page.context["cl"].paginator.count_label
    filtered = client.get("/admin/audit/event/", {"event_type": "LOGIN_FAILED"})
    assert filtered.context["cl"].paginator.count_label == "more than 10,000 events"
    assert len(_shown(filtered)) == 50


def test_trail_when_order_then_timeline_with_steps_and_gaps(
    compliance: Any, staff_client: Any, open_order: Any
) -> None:
    response = staff_client(compliance).get("/admin/audit/event/trail/", {"order_id": str(open_order.pk)})
    page = response.content.decode()
    assert response.status_code == 200
    assert [s["event"].event_type for s in response.context["steps"]] == [
        "ORDER_CREATED",
        "RISK_CHECK_STARTED",
        "RISK_CHECK_PASSED",
    ]
    assert response.context["steps"][0]["delta"] == "start"
    assert response.context["steps"][1]["delta"].startswith("+")
    assert "BUY 10 AAPL" in page


def test_trail_when_unknown_or_malformed_id_then_clear_answer(compliance: Any, staff_client: Any) -> None:
    client = staff_client(compliance)
    missing = client.get("/admin/audit/event/trail/", {"correlation_id": str(uuid.uuid4())})
    assert missing.status_code == 404 and "No events for" in missing.content.decode()
    bad = client.get("/admin/audit/event/trail/", {"order_id": "not-a-uuid"})
    assert bad.status_code == 200 and "not a valid id" in bad.content.decode()


def test_export_csv_when_filtered_then_streams_selection_and_records_event(
    compliance: Any, staff_client: Any, open_order: Any
) -> None:
    response = staff_client(compliance).get("/admin/audit/event/export/", {"format": "csv", "user": "trader1"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [r["event_type"] for r in rows] == ["ORDER_CREATED", "RISK_CHECK_STARTED", "RISK_CHECK_PASSED"]
    assert json.loads(rows[0]["payload"])["symbol"] == "AAPL"
    event = Event.objects.get(event_type="AUDIT_EXPORTED")
    assert event.actor_username == "compliance1"
    assert event.payload["rows"] == 3 and event.payload["filter"] == {"user": ["trader1"]}
    assert event.payload["format"] == "csv"


def test_export_jsonl_when_searched_then_one_json_object_per_line(
    compliance: Any, staff_client: Any, open_order: Any
) -> None:
    response = staff_client(compliance).get(
        "/admin/audit/event/export/", {"format": "jsonl", "q": str(open_order.correlation_id)}
    )
    lines = [json.loads(line) for line in _body(response).splitlines()]
    assert len(lines) == 3 and all(line["order_id"] == str(open_order.pk) for line in lines)
    assert Event.objects.get(event_type="AUDIT_EXPORTED").payload["rows"] == 3


def test_export_when_cell_looks_like_a_formula_then_neutralised(compliance: Any, staff_client: Any) -> None:
    from django.db import transaction

    from audit.services import event_record

    with transaction.atomic():
        event_record(event_type="LOGIN_FAILED", payload={"username": "=cmd"}, symbol="=HYPERLINK")
    rows = list(
        csv.DictReader(
            io.StringIO(_body(staff_client(compliance).get("/admin/audit/event/export/", {"symbol": "=hyperlink"})))
        )
    )
    assert [r["symbol"] for r in rows] == ["'=HYPERLINK"]


def test_export_when_role_lacks_export_permission_then_refused(make_user: Any, staff_client: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    Group.objects.get(name="COMPLIANCE").permissions.remove(Permission.objects.get(codename="export_audit"))
    client = staff_client(make_user("c2", "COMPLIANCE"))
    assert client.get("/admin/audit/event/export/", {"format": "csv"}).status_code == 403
    assert "export-csv" not in client.get("/admin/audit/event/").content.decode()
    assert not Event.objects.filter(event_type="AUDIT_EXPORTED").exists()


def test_export_when_unknown_format_then_400(compliance: Any, staff_client: Any) -> None:
    assert staff_client(compliance).get("/admin/audit/event/export/", {"format": "xlsx"}).status_code == 400
