"""The order lifecycle in the back office, in a real browser: a risk manager reads an amended order's fills and
amendments, then the internal venue's book, which refreshes by itself when a new order rests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import screenshots
from tests.conftest import PASSWORDS
from tests.support import lifecycle

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ITIRP_SHOTS_DIR", Path(__file__).resolve().parents[2] / "test-output" / "lifecycle"))


@pytest.fixture
def market(settings: Any, tmp_path: Any, monkeypatch: Any, trader: Any, trader2: Any) -> lifecycle.Market:
    lifecycle.sync_execution(settings, tmp_path, monkeypatch)
    return lifecycle.aapl_market(trader, trader2)


def test_risk_manager_reads_fills_and_amendments_on_the_order_pages(
    page: Any, admin_login: Any, risk_manager: Any, market: lifecycle.Market
) -> None:
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.goto("/admin/orders/order/?venue__exact=INTERNAL")
    assert page.locator("#result_list tbody tr").count() == 6
    row = page.locator(f"#result_list tbody tr:has(a[href*='{market.ask.pk}'])")
    assert "PARTIALLY_FILLED" in row.inner_text() or "Partially" in row.inner_text()
    screenshots(page, SHOTS, "order-list")

    page.goto(f"/admin/orders/order/{market.ask.pk}/change/")
    assert page.locator(".field-vwap_display .readonly").inner_text() == "101.00"
    assert page.locator(".field-leaves_display .readonly").inner_text() == "6"
    fill = page.locator(".inline-related tbody tr.has_original").first
    assert "INT-" in fill.inner_text() and " UTC" in fill.inner_text()
    screenshots(page, SHOTS, "order-partially-filled")

    page.goto(f"/admin/orders/order/{market.bid.pk}/change/")
    rows = page.locator("#itirp-amendments tbody tr")
    assert rows.count() == 2
    assert "AMENDED" in rows.nth(0).inner_text() and "REJECTED" in rows.nth(1).inner_text()
    screenshots(page, SHOTS, "order-amended")


def test_risk_manager_watches_the_internal_book_refresh_by_itself(
    page: Any, admin_login: Any, risk_manager: Any, trader: Any, market: lifecycle.Market
) -> None:
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.click(".itirp-nav >> text=Internal book")
    page.wait_for_selector("#itirp-bids")
    assert page.locator("#id_symbol").input_value() == "AAPL"
    assert page.locator("#itirp-bids tbody tr").count() == 2 and page.locator("#itirp-asks tbody tr").count() == 2
    assert page.locator("#itirp-asks tbody tr").nth(1).get_attribute("data-orders") == "2"
    assert page.locator("[data-best-bid]").inner_text() == "99.50"
    assert page.locator("#itirp-trades tbody tr").count() == 1
    screenshots(page, SHOTS, "book-depth")

    lifecycle.internal(trader, "BUY", "2", "100")  # a better bid rests: the page shows it without a reload
    page.wait_for_function("document.querySelector('[data-best-bid]').textContent.trim() === '100.00'", timeout=10_000)
    assert page.locator("#itirp-bids tbody tr").count() == 3

    page.select_option("#id_symbol", "MSFT")  # the picker submits on change
    page.wait_for_selector("#itirp-book[data-symbol=MSFT]")
    assert "No resting bids." in page.inner_text("#itirp-bids")
    screenshots(page, SHOTS, "book-depth-empty")
