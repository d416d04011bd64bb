"""Four-eyes in the back office, in a real browser: risk1 raises a firm limit and releases a halted desk, both
forms say they wait for approval; risk1 cannot decide their own change; risk2 approves (reason, confirmation) and
the limit applies."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from approvals.models import PendingChange
from audit.models import Event
from books.models import Desk
from books.services import grant_add
from risk.models import RiskLimits, RiskState, ScopeState
from tests.browser.conftest import screenshots
from tests.conftest import PASSWORDS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ITIRP_SHOTS_DIR", Path(__file__).resolve().parents[2] / "test-output" / "approvals"))


def _firm() -> RiskLimits:
    # The firm row as the platform makes it (a transactional test before this one may have flushed it).
    from risk import store

    return store.firm_limits()


@override_settings(FOUR_EYES_LIMIT_RAISE_PCT=20, FOUR_EYES_RELEASE_HALT=True)
def test_second_risk_manager_approves_a_limit_raise_in_the_back_office(
    browser: Any, page: Any, live_server: Any, admin_login: Any, risk_manager: Any, make_user: Any
) -> None:
    risk2 = make_user("risk2", "RISK_MANAGER")
    for user in (risk_manager, risk2):
        grant_add(actor=None, obj=Desk.objects.get(code="EQ"), user=user, permission="manage")
    before = _firm().max_gross_exposure
    new = (before * 2).quantize(Decimal("0.01"))

    # risk1 raises the firm's gross exposure limit: the form waits for approval, nothing changes
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.goto(f"/admin/risk/risklimits/{_firm().pk}/change/")
    page.fill("#id_max_gross_exposure", str(new))
    page.fill("#id_reason", "year-end room")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    assert "Waiting for approval" in page.locator(".messagelist").inner_text()
    assert _firm().max_gross_exposure == before
    screenshots(page, SHOTS, "limits-waiting")

    # ... and releases a halted desk: it stays HALTED, waiting
    page.goto("/admin/risk/risklimits/trading-states/")
    page.fill("#id_scope", "desk:EQ")
    page.select_option("#id_state", "HALTED")
    page.fill("#id_reason", "drill")
    page.click("input[name=_review]")
    page.click("input[name=_confirm]")
    page.wait_for_selector(".messagelist")
    page.goto("/admin/risk/risklimits/trading-states/?scope=desk:EQ&state=ACTIVE")
    page.fill("#id_reason", "drill over")
    page.click("input[name=_review]")
    page.wait_for_selector(".messagelist")
    assert "Waiting for approval" in page.locator(".messagelist").inner_text()
    assert ScopeState.objects.get(scope="desk:EQ").trading_state == "HALTED"
    row = page.locator("#itirp-trading-states tr[data-scope='desk:EQ']")
    assert "release waiting for approval" in row.inner_text().lower()
    screenshots(page, SHOTS, "release-waiting")

    # the requester sees both on the approvals page (linked from the nav) but may not decide them
    page.goto("/admin/")
    page.click("nav.itirp-nav >> text=Approvals")
    page.wait_for_selector(".itirp-approval")
    assert page.locator(".itirp-approval").count() == 2
    assert page.locator(".itirp-approval-form").count() == 0
    assert page.get_by_text("another risk manager must decide it").count() == 2
    screenshots(page, SHOTS, "pending-requester")

    # risk2, in another browser session, approves the raise: a reason, then a confirmation
    other = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page2 = other.new_page()
    page2.set_default_timeout(15_000)
    admin_login(page2, "risk2", PASSWORDS["RISK_MANAGER"])
    page2.goto("/admin/approvals/pendingchange/pending/")
    change = PendingChange.objects.get(kind="LIMIT_RAISE")
    card = page2.locator(f"#change-{change.change_id}")
    assert "year-end room" in card.inner_text() and "risk1" in card.inner_text()
    screenshots(page2, SHOTS, "pending-approver")
    card.locator("button[value=approve]").click()  # no reason: refused, nothing decided
    assert PendingChange.objects.get(pk=change.pk).status == "PENDING"
    card = page2.locator(f"#change-{change.change_id}")
    card.locator("textarea").fill("checked against the year-end plan")
    card.locator("button[value=approve]").click()
    page2.wait_for_selector("#approval-confirm")
    screenshots(page2, SHOTS, "confirm")
    page2.click("#approval-confirm input[name=_confirm]")
    page2.wait_for_selector(".messagelist")
    assert "approved and applied" in page2.locator(".messagelist").inner_text()
    assert page2.locator(f"#itirp-decided tr[data-change='{change.change_id}'][data-status=APPROVED]").count() == 1
    screenshots(page2, SHOTS, "approved")
    other.close()

    assert _firm().max_gross_exposure == new
    applied = Event.objects.filter(event_type="LIMITS_CHANGED").latest("sequence")
    assert applied.payload["requested_by"] == "risk1" and applied.payload["approved_by"] == "risk2"
    assert PendingChange.objects.get(pk=change.pk).decided_by == risk2


@override_settings(FOUR_EYES_RELEASE_HALT=True)
def test_kill_switch_off_waits_and_a_second_risk_manager_rejects_it(
    browser: Any, page: Any, live_server: Any, admin_login: Any, risk_manager: Any, make_user: Any
) -> None:
    make_user("risk2", "RISK_MANAGER")
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    for reason in ("drill", "drill over"):  # on (never waits), then off (waits)
        page.goto("/admin/risk/risklimits/kill-switch/")
        page.fill("#id_reason", reason)
        page.click("input[name=_review]")
        page.click("input[name=_confirm]")
        page.wait_for_selector(".messagelist")
    assert "Waiting for approval" in page.locator(".messagelist").inner_text()
    assert RiskState.objects.get().kill_switch_enabled is True
    assert page.locator("#kill-switch-state[data-state=on]").count() == 1
    assert page.locator("#kill-switch-release-pending").count() == 1
    screenshots(page, SHOTS, "kill-switch-waiting")

    other = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page2 = other.new_page()
    page2.set_default_timeout(15_000)
    admin_login(page2, "risk2", PASSWORDS["RISK_MANAGER"])
    page2.goto("/admin/approvals/pendingchange/pending/")
    card = page2.locator(".itirp-approval[data-scope=firm]")
    assert "kill switch OFF" in card.inner_text()
    card.locator("textarea").fill("the drill is not over: desk EQ still reconciling")
    card.locator("button[value=reject]").click()
    page2.wait_for_selector("#approval-confirm")
    page2.click("#approval-confirm input[name=_confirm]")
    page2.wait_for_selector(".messagelist")
    assert "rejected" in page2.locator(".messagelist").inner_text()
    screenshots(page2, SHOTS, "rejected")
    other.close()

    assert RiskState.objects.get().kill_switch_enabled is True
    assert PendingChange.objects.get().status == "REJECTED"
    assert Event.objects.filter(event_type="CHANGE_REJECTED").latest("sequence").actor_username == "risk2"
