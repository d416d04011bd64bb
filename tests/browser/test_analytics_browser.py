"""The risk-analytics page in a real browser: reached from the navigation, three VaR methods, the histogram, the
stress table and chart, the day's VaR history; screenshots at a desktop and a phone width."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from analytics.services import var_limits_check
from books.models import Desk
from books.services import grant_add
from risk.models import RiskLimits
from tests.browser.conftest import screenshots
from tests.conftest import PASSWORDS
from tests.support.analytics import fx_desk, history, hold, random_walk

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ITIRP_SHOTS_DIR", Path(__file__).resolve().parents[2] / "test-output" / "analytics"))


@pytest.fixture
def book_with_risk(risk_manager: Any) -> None:
    fx_desk()
    for symbol, price, sigma, seed in (
        ("AAPL", 148.0, 0.02, 4),
        ("MSFT", 295.0, 0.018, 6),
        ("BTCUSD", 60000.0, 0.04, 5),
    ):
        history(symbol, random_walk(price, sigma, 501, seed=seed))
    hold("AAPL", 1000, "140")
    hold("MSFT", -300, "300")
    hold("AAPL-20270115-C150", 20, "7.50")
    hold("BTCUSD", "0.5", "60000", book="FXMAIN")
    grant_add(actor=None, obj=Desk.objects.get(code="EQ"), user=risk_manager, permission="manage")
    RiskLimits.objects.update_or_create(scope="DESK", scope_key="EQ", defaults={"max_var": 5000})
    var_limits_check()
    var_limits_check()


def test_risk_manager_opens_the_analytics_page_of_their_desk(
    page: Any, admin_login: Any, book_with_risk: None, risk_manager: Any
) -> None:
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.click(".itirp-nav >> text=Risk analytics")
    page.wait_for_selector("#analytics-var")
    page.select_option("#analytics-scope", "desk:EQ")
    page.click("#analytics-scope-form input[type=submit]")
    page.wait_for_selector("[data-scope='desk:EQ']")
    cards = page.locator("#analytics-var [data-method]")
    assert cards.count() == 3
    for i in range(3):
        var, es = (float(cards.nth(i).get_attribute(a) or 0) for a in ("data-var", "data-es"))
        assert es >= var > 0
    assert page.locator("#analytics-histogram rect").count() == 30
    assert page.locator("#analytics-stress tbody tr").count() == 6
    assert page.locator("#analytics-stress-chart rect").count() == 6
    assert page.locator("#analytics-history-chart polyline").count() == 1
    assert page.locator("[data-scope-state]").first.inner_text() == "REDUCING"  # over its max VaR of 5,000
    options = page.locator("#analytics-scope option").evaluate_all("o => o.map(x => x.value)")
    assert "desk:EQ" in options and "desk:FX" not in options
    # Nothing wider than the phone's screen: the charts scale, the tables scroll inside themselves.
    page.set_viewport_size({"width": 390, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, overflow
    screenshots(page, SHOTS, "risk-page-desk-EQ")
