"""The market in the back office, in a real browser: a risk manager reads the instruments and their prices,
restricts one (an event), and sees positions and P&L at market on the dashboard."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from audit.models import Event
from market.models import Instrument
from orders.execution import execution_complete, execution_start
from orders.submission import OrderRequest, order_submit
from orders.venue import Execution
from tests.browser.conftest import screenshots
from tests.conftest import PASSWORDS
from tests.support.market import price

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ITIRP_SHOTS_DIR", Path(__file__).resolve().parents[2] / "test-output" / "market"))


def _shots(page: Any, name: str) -> None:
    screenshots(page, SHOTS, name)


def _filled(trader: Any, symbol: str, quantity: str, at: str) -> None:
    from decimal import Decimal

    order, decision = order_submit(
        user=trader, request=OrderRequest(symbol=symbol, side="BUY", quantity=Decimal(quantity), price=Decimal(at))
    )
    assert decision.approved, decision.message
    execution_start(order_id=order.pk)
    execution_complete(order_id=order.pk, fill=Execution("SIM", f"B-{order.pk}", order.quantity, Decimal(at)))


def test_risk_manager_reads_instruments_and_restricts_one(page: Any, admin_login: Any, risk_manager: Any) -> None:
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.goto("/admin/market/instrument/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() >= 16
    assert page.locator("#result_list tbody tr:has-text('ESH7')").count() == 1
    _shots(page, "instruments")

    page.goto("/admin/market/instrument/?asset_class__exact=OPTION")
    assert page.locator("#result_list tbody tr").count() == 1
    page.goto("/admin/market/instrument/")
    page.check("#result_list tr:has-text('TSLA') input.action-select")
    page.select_option("select[name=action]", value="restrict_instruments")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    _shots(page, "instrument-restricted")
    assert Instrument.objects.get(symbol="TSLA").status == "RESTRICTED"
    changed = Event.objects.filter(event_type="INSTRUMENT_CHANGED").latest("sequence")
    assert changed.symbol == "TSLA" and changed.payload["changes"] == {"status": ["ACTIVE", "RESTRICTED"]}
    assert changed.actor_username == "risk1"

    page.goto("/admin/market/mark/")
    assert page.locator("#result_list").get_by_text("AAPL", exact=True).count() >= 1
    _shots(page, "marks")


def test_dashboard_shows_positions_and_pnl_at_market(
    page: Any, admin_login: Any, risk_manager: Any, trader: Any
) -> None:
    _filled(trader, "ESH7", "2", "5000")
    _filled(trader, "AAPL", "100", "150")
    price("ESH7", "4990.25")  # 2 x -9.75 x 50 = -975
    price("AAPL", "151.50")  # 100 x 1.50 = +150
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.goto("/admin/risk/risklimits/dashboard/")
    page.wait_for_selector("#itirp-positions")
    card = page.locator("[data-daily-pnl]")
    assert card.get_attribute("data-daily-pnl") == "-825.00"
    row = page.locator("#itirp-positions tr:has-text('ESH7')")
    assert "499,025" in row.inner_text().replace("\u202f", ",") or "499025" in row.inner_text()
    _shots(page, "dashboard-at-market")
