"""Alerts in a real browser: the banner of a risk manager's page shows a halt set by another user within 5 s,
with no reload (the evaluator runs beside the live server, the stream pushes), and is acknowledged with a note."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from alerts.models import Alert
from alerts.services import Evaluator
from tests.alerts.conftest import default_rules
from tests.browser.conftest import screenshots
from tests.conftest import PASSWORDS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ITIRP_SHOTS_DIR", Path(__file__).resolve().parents[2] / "test-output" / "alerts"))


@pytest.fixture
def evaluator_running(live_server: Any) -> Iterator[None]:
    """The evaluator process's loop (manage.py run_alerts), on a thread with its own database connection."""
    default_rules()
    stop = threading.Event()
    Evaluator().run_events()  # the cursor at the trail's end before anything happens

    def loop() -> None:
        ev = Evaluator()
        try:
            while not stop.is_set():
                ev.run_events()
                stop.wait(0.25)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


def test_banner_shows_a_halt_by_another_user_within_5_s_and_is_acknowledged_with_a_note(
    page: Any, admin_login: Any, make_user: Any, client_for: Any, evaluator_running: None
) -> None:
    make_user("risk1", "RISK_MANAGER")
    other = make_user("risk2", "RISK_MANAGER")
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.goto(reverse("admin:risk_dashboard"))
    page.wait_for_timeout(1000)  # the list loaded and the stream open
    assert page.locator("#itirp-alerts").is_hidden()

    halted_at = time.monotonic()
    response = client_for(other).post(
        "/api/v1/risk/trading-state", {"scope": "firm", "state": "HALTED", "reason": "venue outage"}, format="json"
    )
    assert response.status_code == 200, response.content
    page.wait_for_selector(".itirp-alert-critical:has-text('HALTED')", timeout=5000)
    shown = time.monotonic() - halted_at
    print(f"banner shown {shown:.2f} s after the halt")
    assert shown < 5
    assert "by risk2" in page.locator(".itirp-alert").first.inner_text()
    screenshots(page, SHOTS, "banner-halt")

    page.fill(".itirp-alert-ack input[name=note]", "Halt confirmed with the desk")
    page.click(".itirp-alert-ack button")
    page.wait_for_selector("#itirp-alerts", state="hidden")
    alert = Alert.objects.get(kind="TRADING_STATE")
    assert (alert.acknowledged_by.username, alert.note) == ("risk1", "Halt confirmed with the desk")
    screenshots(page, SHOTS, "banner-acknowledged")


def test_risk_manager_edits_a_rule_in_the_admin_and_the_change_is_an_event(
    page: Any, admin_login: Any, make_user: Any
) -> None:
    from alerts.models import AlertRule
    from audit.models import Event

    default_rules()
    make_user("risk1", "RISK_MANAGER")
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.goto("/admin/alerts/alertrule/")
    assert page.locator("#result_list tbody tr").count() == 10
    screenshots(page, SHOTS, "rules")
    rule = AlertRule.objects.get(name="Burst of rejections")
    page.goto(f"/admin/alerts/alertrule/{rule.pk}/change/")
    page.fill("#id_count", "8")
    screenshots(page, SHOTS, "rule-change")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    assert AlertRule.objects.get(pk=rule.pk).count == 8
    event = Event.objects.filter(event_type="ALERT_CONFIG_CHANGED").latest("sequence")
    assert (event.actor_username, event.payload["values"]["count"]) == ("risk1", "8")
    from django.db import transaction

    from alerts import rules, services

    with transaction.atomic():
        services.alerts_raise(
            [
                rules.Candidate(
                    rule.pk, "REJECTION_BURST", "HIGH", "book:EQ-1", "8 rejected orders on book:EQ-1 within 60 s", "a"
                ),
                rules.Candidate(
                    rule.pk,
                    "REJECTION_BURST",
                    "HIGH",
                    "user:trader1",
                    "8 rejected orders on user:trader1 within 60 s",
                    "b",
                ),
            ]
        )
    page.goto("/admin/alerts/alert/")
    assert page.locator("#result_list tbody tr").count() == 2
    screenshots(page, SHOTS, "alerts-list")
