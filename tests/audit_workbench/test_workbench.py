"""The compliance workbench (issue 18.4): search by client order id and by the short order id, a time range
to the second in UTC, event types in groups, rejections as sentences, payloads as tables with money, the seal
and verification status on the list, exports that carry each event's hashes and seal."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from audit import integrity, presentation
from audit.models import Event, EventType
from audit.services import event_record

pytestmark = pytest.mark.django_db

REJECTION = {
    "message": "Risk violations: POSITION_LIMIT",
    "kill_switch": False,
    "violations": [
        {"code": "POSITION_LIMIT", "scope": "book:EQ-1", "limit": "1000000.00000000", "projected": "1250000.0000000000"}
    ],
}


@pytest.fixture
def staff(compliance: Any) -> Client:
    client = Client()
    client.force_login(compliance)
    return client


def shown(response: Any) -> list[Event]:
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list)


def make_order(user: Any, client_order_id: str | None = None) -> Any:
    from orders.submission import OrderRequest, order_submit

    order, _ = order_submit(
        user=user,
        request=OrderRequest(
            symbol="AAPL", side="BUY", quantity=Decimal(10), price=Decimal(150), client_order_id=client_order_id
        ),
        correlation_id=uuid.uuid4(),
    )
    return order


def test_violation_sentence_reads_as_compliance_says_it() -> None:
    assert presentation.rejection_sentences(REJECTION) == [
        "POSITION_LIMIT on book:EQ-1: projected 1,250,000.00 > limit 1,000,000.00"
    ]
    assert presentation.rejection_sentences({"kill_switch": True, "violations": []}) == [
        "Kill switch active: all trading halted"
    ]


def test_numbers_as_money_but_ids_and_counts_as_they_are() -> None:
    table = str(
        presentation.payload_table({"price": "150.25000000", "quantity": 100, "failure_limit": 5, "user_id": 7})
    )
    assert "150.25" in table and "100.00" in table
    assert ">5<" in table and ">7<" in table and "5.00" not in table
    assert "1,000,000.00" in str(presentation.payload_table({"limit": "1000000"}))


def test_search_when_client_order_id_then_its_order_and_refused_attempts(trader: Any, staff: Client) -> None:
    order = make_order(trader, "cl-42")
    make_order(trader, "cl-43")
    with pytest.raises(Exception):  # noqa: B017, PT011 - the 409 itself is tests/audit_workbench/test_refusals
        make_order(trader, "cl-42")
    events = shown(staff.get("/admin/audit/event/", {"q": "cl-42"}))
    assert {(e.event_type, e.order_id) for e in events} == {
        ("ORDER_CREATED", order.pk),
        ("RISK_CHECK_STARTED", order.pk),
        ("RISK_CHECK_PASSED", order.pk),
        ("ORDER_REFUSED", None),
    }
    assert {e.event_type for e in shown(staff.get("/admin/audit/event/", {"client_order_id": "cl-42"}))} == {
        e.event_type for e in events
    }


def test_order_created_when_listed_then_one_readable_line() -> None:
    payload = {"side": "BUY", "quantity": "10.00000000", "symbol": "AAPL", "price": "150.25", "book": "MAIN"}
    assert presentation.summary("ORDER_CREATED", {**payload, "client_order_id": "c-1"}) == (
        "BUY 10.00 AAPL @ 150.25, book MAIN, client order id c-1"
    )


def test_search_when_short_order_id_then_that_order(trader: Any, staff: Client) -> None:
    order, other = make_order(trader, "p-1"), make_order(trader, "p-2")
    short = str(order.pk)[:8]
    page = staff.get("/admin/audit/event/", {"q": short})
    assert {e.order_id for e in shown(page)} == {order.pk}
    assert other.pk not in {e.order_id for e in shown(staff.get("/admin/audit/event/", {"q": short + "…"}))}
    assert short + "…" in page.content.decode()  # the list shows the id it can be searched by


def test_range_filter_when_seconds_then_half_open_in_utc_and_bad_value_said(staff: Client, db: Any) -> None:
    base = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)
    for second in (0, 1, 2, 3):
        Event.objects.create(
            event_type=EventType.LOGIN_FAILED,
            correlation_id=uuid.uuid4(),
            timestamp=base + dt.timedelta(seconds=second),
            payload={"n": second},
        )
    page = staff.get("/admin/audit/event/", {"since": "2026-03-02 09:00:01", "until": "2026-03-02T09:00:03Z"})
    assert sorted(e.payload["n"] for e in shown(page)) == [1, 2]
    with_offset = staff.get("/admin/audit/event/", {"since": "2026-03-02T10:00:03+01:00"})
    assert [e.payload["n"] for e in shown(with_offset) if "n" in e.payload] == [3]
    bad = staff.get("/admin/audit/event/", {"since": "2026-03-02 25:00:00"})
    assert shown(bad) == [] and "is not a date and time" in bad.content.decode()
    reversed_range = staff.get("/admin/audit/event/", {"since": "2026-03-03", "until": "2026-03-02"})
    assert shown(reversed_range) == [] and "From must be before To" in reversed_range.content.decode()


def test_groups_when_chosen_then_only_their_types(trader: Any, staff: Client) -> None:
    make_order(trader)
    groups = {name for name, _ in presentation.grouped_types()}
    assert {"orders", "risk", "auth", "admin", "market", "integrity"} <= groups
    assert all(presentation.group_of(t) != "other" for t in EventType.values)
    risk = {e.event_type for e in shown(staff.get("/admin/audit/event/", {"group": "risk"}))}
    assert risk == {"RISK_CHECK_STARTED", "RISK_CHECK_PASSED"}
    auth = {e.event_type for e in shown(staff.get("/admin/audit/event/", {"group": "admin"}))}
    assert auth == {"USER_CREATED"}
    page = staff.get("/admin/audit/event/").content.decode()
    assert '<optgroup label="integrity">' in page


def test_rejection_when_listed_and_opened_then_sentence_and_tables(staff: Client, db: Any) -> None:
    with transaction.atomic():
        event = event_record(event_type=EventType.RISK_CHECK_FAILED, payload=REJECTION, order_id=uuid.uuid4())
    sentence = "POSITION_LIMIT on book:EQ-1: projected 1,250,000.00 &gt; limit 1,000,000.00"
    assert sentence in staff.get("/admin/audit/event/").content.decode()
    detail = staff.get(f"/admin/audit/event/{event.pk}/change/").content.decode()
    assert sentence in detail
    assert 'class="payload-table"' in detail and "1,250,000.00" in detail
    assert "1250000.0000000000" in detail  # the stored JSON stays one click away


def test_status_when_sealed_and_verified_then_on_the_list(staff: Client, record_events: Any) -> None:
    page = staff.get("/admin/audit/event/").content.decode()
    assert "never run" in page
    seals = integrity.seal_pending(settle_seconds=0, gap_wait_seconds=0)
    integrity.verify_and_record(seal_first=False)
    page = staff.get("/admin/audit/event/")
    status = page.context["integrity"]
    assert status["seal"].number == seals[-1].number
    assert status["verification"]["ok"] is True
    html = page.content.decode()
    assert f"#{seals[-1].number}" in html and 'id="verification-result">OK' in html


def test_export_when_sealed_then_rows_carry_hashes_and_seal(staff: Client, record_events: Any) -> None:
    seals = integrity.seal_pending(settle_seconds=0, gap_wait_seconds=0)
    with transaction.atomic():
        event_record(event_type=EventType.LOGIN_FAILED, payload={"after": "seal"})
    response = staff.get("/admin/audit/event/export/", {"format": "csv", "event_type": "LOGIN_FAILED"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    sealed, unsealed = rows[:-1], rows[-1]
    assert sealed and all(len(r["content_hash"]) == 64 and len(r["chain_hash"]) == 64 for r in sealed)
    assert {r["seal"] for r in sealed} == {str(seals[-1].number)} and sealed[0]["seal_hash"] == seals[-1].seal_hash
    assert (unsealed["content_hash"], unsealed["seal"]) == ("", "")
    lines = [
        json.loads(line)
        for line in b"".join(
            staff.get("/admin/audit/event/export/", {"format": "jsonl", "event_type": "LOGIN_FAILED"}).streaming_content
        )
        .decode()
        .splitlines()
    ]
    assert lines[0]["content_hash"] == sealed[0]["content_hash"] and lines[-1]["seal"] is None


@pytest.fixture
def record_events(compliance: Any, witness_dir: Any) -> None:
    for n in range(3):
        with transaction.atomic():
            event_record(event_type=EventType.LOGIN_FAILED, payload={"n": n})


@pytest.fixture
def witness_dir(tmp_path: Any, settings: Any) -> Any:
    from audit.integrity.alarm import alarm_clear

    settings.AUDIT_WITNESS = ["file"]
    settings.AUDIT_WITNESS_DIR = tmp_path / "witness"
    yield settings.AUDIT_WITNESS_DIR
    alarm_clear()
