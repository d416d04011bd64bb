"""The risk manager's pages for all-day use in a real browser (issue 18.5): the below-usage warning and its
confirmation on the firm limits form, the history behind the HISTORY button after three changes, the halt banner
on another page after a halt set by another user, and the exposure chart with 15 minutes of data. Screenshots at
1280 and 390 px in test-output/riskpages/."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from risk.models import ExposureSnapshot, Position
from risk.store import firm_limits
from tests.browser.conftest import screenshots
from tests.conftest import PASSWORDS
from tests.support.market import price

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ITIRP_SHOTS_DIR", Path(__file__).resolve().parents[2] / "test-output" / "riskpages"))


@pytest.fixture
def firm_book(risk_manager: Any) -> None:
    """A 15,000.00 AAPL position and 15 minutes of exposure snapshots."""
    price("AAPL", "150")
    Position.objects.create(scope="firm", symbol="AAPL", quantity=Decimal(100), average_price=Decimal(150))
    now = timezone.now()
    for minutes in range(15, 0, -1):
        ExposureSnapshot.objects.create(
            taken_at=now - dt.timedelta(minutes=minutes),
            net_exposure=Decimal(1000 * (16 - minutes)),
            gross_exposure=Decimal(1000 * (16 - minutes)),
            daily_volume=Decimal(0),
            open_volume=Decimal(0),
            largest_position=Decimal(0),
        )


def _no_cut_off(page: Any, width: int) -> None:
    """Nothing wider than the window: a wide table scrolls inside its own box, the page never does."""
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= width, f"page is {overflow}px wide at {width}px"


def _save_firm_limit(page: Any, value: str, reason: str) -> None:
    page.goto(f"/admin/risk/risklimits/{firm_limits().pk}/change/")
    page.fill("#id_max_position_size", value)
    page.fill("#id_reason", reason)
    page.click("input[name=_save]")


def test_risk_manager_all_day_pages(
    page: Any, admin_login: Any, firm_book: None, risk_manager: Any, make_user: Any
) -> None:
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])

    # Below usage: a warning first, saved only through its confirmation button.
    _save_firm_limit(page, "10000", "cut the single-name limit")
    page.wait_for_selector("#limits-below-warning")
    assert "15,000.00 USD" in page.inner_text("#limits-below-warning")
    screenshots(page, SHOTS, "firm-limits-below-usage")
    assert firm_limits().max_position_size != Decimal("10000")
    page.click("#confirm-below")
    page.wait_for_selector(".messagelist")
    assert firm_limits().max_position_size == Decimal("10000")

    # Two more changes, then the HISTORY button: three rows, newest first, who, old -> new and why.
    _save_firm_limit(page, "20000", "room for the close")
    page.wait_for_selector(".messagelist")
    _save_firm_limit(page, "30000", "index rebalance")
    page.wait_for_selector(".messagelist")
    page.goto(f"/admin/risk/risklimits/{firm_limits().pk}/change/")
    page.click("a.historylink")
    page.wait_for_selector("#itirp-scope-history")
    rows = page.locator("#itirp-scope-history tbody tr[data-event=LIMITS_CHANGED]")
    assert rows.count() == 3
    first = rows.first.inner_text()
    assert "risk1" in first and "20,000.00" in first and "30,000.00" in first and "index rebalance" in first
    assert " UTC" in first
    _no_cut_off(page, 1280)
    screenshots(page, SHOTS, "firm-history")

    # The dashboard: the chart spans the 15 minutes; the limit lines are inside it, labelled; the largest
    # position names its symbol.
    page.goto("/admin/risk/risklimits/dashboard/")
    page.wait_for_selector("#itirp-exposure-chart")
    assert int(page.get_attribute("#itirp-exposure-chart", "data-points") or 0) == 16
    ticks = page.locator("#itirp-exposure-chart .itirp-tick").all_text_contents()
    assert 3 <= len(ticks) <= 8
    labels = page.locator("#itirp-exposure-chart .itirp-limit-label").all_text_contents()
    assert any("gross limit" in label for label in labels)
    assert page.get_attribute("[data-largest-symbol]", "data-largest-symbol") == "AAPL"
    _no_cut_off(page, 1280)
    screenshots(page, SHOTS, "dashboard")

    # Another risk manager halts the firm: the next page risk1 opens carries the banner.
    from orders import services as order_services

    other = make_user("risk2", "RISK_MANAGER")
    order_services.kill_switch_set(actor=other, enabled=True, reason="venue outage drill")
    page.goto("/admin/risk/risklimits/scopes/")
    banner = page.wait_for_selector("#itirp-halt-banner")
    assert "venue outage drill" in banner.inner_text() and "risk2" in banner.inner_text()
    screenshots(page, SHOTS, "halt-banner")
    page.set_viewport_size({"width": 390, "height": 900})
    for url in ("/admin/risk/risklimits/dashboard/", "/admin/risk/risklimits/history/firm/", "/admin/"):
        page.goto(url)
        _no_cut_off(page, 390)
    page.set_viewport_size({"width": 1280, "height": 900})
