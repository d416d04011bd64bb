"""The period report (GET /audit/report and its back-office page) against a known data set: orders by status,
rejections by limit and scope, refused attempts, fills, trading-state periods, limit changes with requester
and approver, user and role changes, verifications; downloaded as CSV and PDF (opened with pdftotext), each
download an AUDIT_EXPORTED event (issue 18.4)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import subprocess
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from audit.models import Event, EventType
from books.models import Book
from orders.models import Fill, Order

pytestmark = pytest.mark.django_db

SINCE = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
UNTIL = dt.datetime(2026, 1, 11, tzinfo=dt.UTC)
PERIOD = {"since": "2026-01-10T00:00:00Z", "until": "2026-01-11T00:00:00Z"}


def at(hour: int, minute: int = 0, day: int = 10) -> dt.datetime:
    return dt.datetime(2026, 1, day, hour, minute, tzinfo=dt.UTC)


def event(event_type: str, when: dt.datetime, actor: str = "", **payload: Any) -> Event:
    return Event.objects.create(
        event_type=event_type, correlation_id=uuid.uuid4(), timestamp=when, actor_username=actor, payload=payload
    )


def violation(code: str, scope: str) -> dict[str, Any]:
    return {"code": code, "scope": scope, "limit": "1000000", "projected": "1250000"}


@pytest.fixture
def data_set(trader: Any) -> None:
    book = Book.objects.get(code="MAIN")
    statuses = ["EXECUTED", "EXECUTED", "REJECTED", "REJECTED", "REJECTED", "CANCELLED"]
    orders = []
    for n, status in enumerate(statuses):
        orders.append(
            Order.objects.create(
                user=trader,
                book=book,
                symbol="AAPL",
                side="BUY",
                quantity=Decimal(15),
                price=Decimal(100),
                status=status,
                execution_key=f"rk-{n}",
                created_at=at(9, n),
            )
        )
    Order.objects.create(
        user=trader,
        book=book,
        symbol="AAPL",
        side="BUY",
        quantity=Decimal(1),
        price=Decimal(1),
        status="EXECUTED",
        execution_key="rk-before",
        created_at=at(23, day=9),
    )
    Fill.objects.create(
        order=orders[0], venue="SIM", venue_execution_id="f1", quantity=10, price=100, created_at=at(9, 30)
    )
    Fill.objects.create(
        order=orders[0], venue="SIM", venue_execution_id="f2", quantity=5, price=102, created_at=at(9, 31)
    )
    Fill.objects.create(
        order=orders[1], venue="SIM", venue_execution_id="f3", quantity=1, price=1, created_at=at(1, day=11)
    )
    event("RISK_CHECK_FAILED", at(9, 2), violations=[violation("POSITION_LIMIT", "book:EQ-1")])
    event("RISK_CHECK_FAILED", at(9, 3), violations=[violation("POSITION_LIMIT", "book:EQ-1")])
    event(
        "RISK_CHECK_FAILED",
        at(9, 4),
        violations=[violation("POSITION_LIMIT", "book:EQ-1"), violation("DAILY_VOLUME_LIMIT", "firm")],
    )
    event("RISK_CHECK_FAILED", at(9, 5), kill_switch=True, violations=[])
    event("RISK_CHECK_FAILED", at(8, day=9), violations=[violation("POSITION_LIMIT", "book:EQ-1")])  # before
    event("ORDER_REFUSED", at(9, 6), reason="duplicate_order", client_order_id="a")
    event("ORDER_REFUSED", at(9, 7), reason="duplicate_order", client_order_id="b")
    event("ORDER_REFUSED", at(9, 8), reason="throttled", client_order_id="c")
    event("TRADING_STATE_CHANGED", at(20, day=9), "risk1", scope="desk:EQ", state="HALTED", reason="fat finger")
    event("TRADING_STATE_CHANGED", at(10), "risk2", scope="desk:EQ", state="ACTIVE", reason="resolved")
    event("TRADING_STATE_CHANGED", at(12), "risk1", scope="firm", state="HALTED", reason="drill")
    event("TRADING_STATE_CHANGED", at(12, 30), "risk1", scope="firm", state="ACTIVE", reason="drill over")
    event(
        "LIMITS_CHANGED",
        at(11),
        "risk1",
        scope="book:EQ-1",
        reason="new mandate",
        approved_by="risk2",
        changed={"max_position_size": {"old": "1000000", "new": "2000000"}},
    )
    event(
        "LIMITS_CHANGED",
        at(11, 5),
        "risk1",
        scope="firm",
        reason="tighten",
        changed={"max_daily_volume": {"old": "5000000", "new": "4000000"}},
    )
    event("USER_CREATED", at(8), "admin", username="newbie", role="TRADER", is_superuser=False)
    event("ROLE_CHANGED", at(8, 10), "admin", username="newbie", old_role="TRADER", new_role="RISK_MANAGER")
    event("AUDIT_VERIFIED", at(6), ok=True, events_verified=120, seals=4, head_seal=4)
    event("AUDIT_VERIFIED", at(18), ok=False, events_verified=0, seals=4, detail="hash records of seal 3 were altered")


def test_report_api_when_known_data_then_every_figure(data_set: Any, compliance: Any, client_for: Any) -> None:
    body = client_for(compliance).get("/api/v1/audit/report", PERIOD)
    assert body.status_code == 200, body.content
    report = body.json()
    assert report["orders"] == {"total": 6, "by_status": {"CANCELLED": 1, "EXECUTED": 2, "REJECTED": 3}}
    assert report["rejections"] == [
        {"code": "DAILY_VOLUME_LIMIT", "scope": "firm", "count": 1},
        {"code": "KILL_SWITCH", "scope": "firm", "count": 1},
        {"code": "POSITION_LIMIT", "scope": "book:EQ-1", "count": 3},
    ]
    assert report["refusals"] == {"duplicate_order": 2, "throttled": 1}
    assert report["fills"] == {"count": 2, "orders": 1, "quantity": 15.0, "notional": 1510.0}
    periods = [(p["scope"], p["state"], p["from"], p["until"]) for p in report["trading_state_periods"]]
    assert periods == [
        ("desk:EQ", "HALTED", "2026-01-10T00:00:00.000000Z", "2026-01-10T10:00:00.000000Z"),
        ("desk:EQ", "ACTIVE", "2026-01-10T10:00:00.000000Z", None),
        ("firm", "HALTED", "2026-01-10T12:00:00.000000Z", "2026-01-10T12:30:00.000000Z"),
        ("firm", "ACTIVE", "2026-01-10T12:30:00.000000Z", None),
    ]
    changes = [(c["scope"], c["requested_by"], c["approved_by"]) for c in report["limit_changes"]]
    assert changes == [("book:EQ-1", "risk1", "risk2"), ("firm", "risk1", "—")]
    assert [u["event_type"] for u in report["user_changes"]] == ["USER_CREATED", "ROLE_CHANGED"]
    assert [v["ok"] for v in report["verifications"]] == [True, False]


def test_report_api_when_bad_or_not_allowed_then_4xx(compliance: Any, trader: Any, client_for: Any) -> None:
    auditor = client_for(compliance)
    assert auditor.get("/api/v1/audit/report", {"since": "yesterday"}).status_code == 400
    assert auditor.get("/api/v1/audit/report").json()["orders"]["total"] == 0  # the last 24 hours
    assert auditor.get("/api/v1/audit/report", {"since": PERIOD["until"], "until": PERIOD["since"]}).status_code == 400
    assert client_for(trader).get("/api/v1/audit/report", PERIOD).status_code == 403


def staff(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_report_page_when_known_data_then_sections_and_downloads(data_set: Any, compliance: Any) -> None:
    page = staff(compliance).get("/admin/audit/event/report/", {"since": "2026-01-10", "until": "2026-01-11 00:00:00"})
    html = page.content.decode()
    assert page.status_code == 200
    for text in ("Orders by status", "POSITION_LIMIT", "book:EQ-1", "1,510.00", "fat finger", "risk2", "—", "FAILED"):
        assert text in html, text
    assert 'id="report-pdf"' in html and not Event.objects.filter(event_type=EventType.AUDIT_EXPORTED).exists()
    bad = staff(compliance).get("/admin/audit/event/report/", {"since": "2026-01-11", "until": "2026-01-10"})
    assert bad.status_code == 400 and "From must be before To" in bad.content.decode()


def test_report_csv_when_downloaded_then_figures_and_audit_exported(data_set: Any, compliance: Any) -> None:
    response = staff(compliance).get("/admin/audit/event/report/", {**PERIOD, "download": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert ["REJECTED", "3"] in rows and ["POSITION_LIMIT", "book:EQ-1", "3"] in rows and ["total", "6"] in rows
    exported = Event.objects.get(event_type=EventType.AUDIT_EXPORTED)
    assert exported.actor_username == "compliance1"
    assert exported.payload["kind"] == "period_report" and exported.payload["format"] == "csv"
    assert exported.payload["orders"] == 6


@pytest.mark.skipif(
    shutil.which("pdftotext") is None and os.environ.get("REQUIRE_SERVICES") != "1",  # CI: a missing tool fails
    reason="pdftotext (Debian poppler-utils) not installed",
)
def test_report_pdf_when_downloaded_then_pdftotext_finds_the_counts(
    data_set: Any, compliance: Any, tmp_path: Any
) -> None:
    response = staff(compliance).get("/admin/audit/event/report/", {**PERIOD, "download": "pdf"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    path = tmp_path / "report.pdf"
    path.write_bytes(response.content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "Orders: 6; rejected: 3; refused attempts: 3; fills: 2" in text
    assert "POSITION_LIMIT" in text and "1,510.00" in text and "risk2" in text
    exported = Event.objects.get(event_type=EventType.AUDIT_EXPORTED)
    assert exported.payload["format"] == "pdf" and exported.payload["bytes"] == len(response.content)


def test_report_download_when_no_export_permission_then_403_and_nothing_written(
    data_set: Any, risk_manager: Any, compliance: Any
) -> None:
    from django.contrib.auth.models import Permission

    compliance.user_permissions.remove(Permission.objects.get(codename="export_audit"))
    for group in compliance.groups.all():
        group.permissions.remove(Permission.objects.get(codename="export_audit"))
    from accounts.models import User

    fresh = User.objects.get(pk=compliance.pk)
    response = staff(fresh).get("/admin/audit/event/report/", {**PERIOD, "download": "pdf"})
    assert response.status_code == 403
    assert not Event.objects.filter(event_type=EventType.AUDIT_EXPORTED).exists()


def test_report_of_a_period_before_1970_is_400_not_500(client_for: Any, compliance: Any) -> None:
    # found by schemathesis
    response = client_for(compliance).get(
        "/api/v1/audit/report/?since=0273-07-27T02%3A18%3A23.433880%2B01%3A37&until=1354-06-27T05%3A34%3A46Z"
    )
    assert response.status_code == 400 and "since" in str(response.json())
