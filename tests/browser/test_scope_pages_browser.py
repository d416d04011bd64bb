"""The back office by scope in a real browser: a risk manager granted one desk sees and edits only it."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from guardian.shortcuts import assign_perm

from audit.models import Event
from books.models import Book, Desk
from risk.models import Position, RiskLimits, ScopeState
from tests.browser.conftest import screenshots
from tests.conftest import PASSWORDS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Screenshots of every scope page at a desktop and a phone width, for a person to look at.
SHOTS = Path(os.environ.get("ITIRP_SHOTS_DIR", Path(__file__).resolve().parents[2] / "test-output" / "scopes"))


@pytest.fixture
def two_desks(risk_manager: Any, trader: Any) -> dict[str, Any]:
    eq, _ = Desk.objects.get_or_create(code="EQ", defaults={"name": "Equities"})
    main, _ = Book.objects.get_or_create(code="MAIN", defaults={"name": "Main book", "desk": eq})
    fx = Desk.objects.create(code="FX", name="Foreign exchange")
    fxspot = Book.objects.create(code="FXSPOT", name="FX spot", desk=fx)
    assign_perm("books.manage_desk", risk_manager, eq)
    assign_perm("books.trade_book", trader, main)
    Position.objects.create(scope="desk:EQ", symbol="AAPL", quantity=Decimal(100), average_price=Decimal(150))
    Position.objects.create(scope="book:MAIN", symbol="AAPL", quantity=Decimal(100), average_price=Decimal(150))
    Position.objects.create(scope="desk:FX", symbol="EURUSD", quantity=Decimal(1000), average_price=Decimal("1.1"))
    ScopeState.objects.update_or_create(scope="desk:FX", defaults={"trading_state": "HALTED", "reason": "their desk"})
    return {"eq": eq, "main": main, "fx": fx, "fxspot": fxspot}


def _shots(page: Any, name: str) -> None:
    screenshots(page, SHOTS, name)


def test_risk_manager_of_one_desk_sees_and_edits_only_it(
    page: Any, admin_login: Any, two_desks: Any, risk_manager: Any
) -> None:
    admin_login(page, "risk1", PASSWORDS["RISK_MANAGER"])
    page.click(".itirp-tiles >> text=Limits by scope")
    page.wait_for_selector("#itirp-scope-limits")
    scopes = page.locator("#itirp-scope-limits tr[data-scope]").evaluate_all("rows => rows.map(r => r.dataset.scope)")
    assert "desk:EQ" in scopes and "book:MAIN" in scopes
    assert "desk:FX" not in scopes and "book:FXSPOT" not in scopes
    _shots(page, "limits-list")

    page.click("tr[data-scope='desk:EQ'] >> text=Edit")
    page.wait_for_selector("#scope-limits-form")
    page.fill("#id_max_position_size", "1000")  # below the desk's 15,000 position
    page.fill("#id_reason", "tighten the desk")
    _shots(page, "limits-form")
    page.click("input[name=_save]")
    page.wait_for_selector("#scope-limits-warning")
    _shots(page, "limits-warning")
    assert not RiskLimits.objects.filter(scope="DESK", scope_key="EQ").exists()
    page.click("#confirm-below")  # the confirmation button, for exactly these values
    page.wait_for_selector(".messagelist")
    assert "Limits of desk:EQ saved" in page.inner_text(".messagelist")
    _shots(page, "limits-saved")
    assert RiskLimits.objects.get(scope="DESK", scope_key="EQ").max_position_size == Decimal("1000")
    assert Event.objects.filter(event_type="LIMITS_CHANGED", actor_username="risk1").exists()

    response = page.goto("/admin/risk/risklimits/scopes/desk:FX/")
    assert response.status == 403

    page.goto("/admin/risk/risklimits/trading-states/")
    assert page.locator("#itirp-trading-states tr[data-scope='desk:FX']").count() == 0
    page.fill("#id_scope", "book:MAIN")
    page.select_option("#id_state", "HALTED")
    page.fill("#id_reason", "bad fills on MAIN")
    page.click("input[name=_review]")
    page.wait_for_selector("#trading-state-confirm")
    _shots(page, "trading-state-confirm")
    page.click("input[name=_confirm]")
    page.wait_for_selector("#itirp-trading-states tr[data-scope='book:MAIN'][data-state=HALTED]")
    assert "Trading state of book:MAIN: HALTED." in page.inner_text(".messagelist")
    _shots(page, "trading-states")

    page.goto("/admin/risk/risklimits/dashboard/")
    options = page.locator("#id_desk option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["", "EQ"]
    page.select_option("#id_desk", "EQ")
    page.click("#dashboard-filter input[type=submit]")
    page.wait_for_selector("#itirp-dashboard[data-scope='desk:EQ']")
    assert "AAPL" in page.inner_text("#itirp-positions") and "EURUSD" not in page.inner_text("#itirp-positions")
    _shots(page, "dashboard-desk")
    assert page.goto("/admin/risk/risklimits/dashboard/?desk=FX").status == 403

    page.goto("/admin/risk/risklimits/grants/")
    assert page.locator("[data-desk=EQ]").count() == 1 and page.locator("[data-desk=FX]").count() == 0
    assert "risk1" in page.inner_text("#desk-EQ")
    _shots(page, "grants")


def test_compliance_sees_every_desk_read_only(page: Any, admin_login: Any, two_desks: Any, compliance: Any) -> None:
    admin_login(page, "compliance1", PASSWORDS["COMPLIANCE"])
    page.goto("/admin/risk/risklimits/scopes/")
    assert page.locator("tr[data-scope='desk:FX']").count() == 1
    _shots(page, "compliance-limits-list")
    page.goto("/admin/risk/risklimits/scopes/desk:FX/")
    assert page.locator("#read-only-note").count() == 1 and page.locator("#scope-limits-form").count() == 0
    _shots(page, "compliance-limits-read-only")
    page.goto("/admin/risk/risklimits/trading-states/")
    assert page.locator("tr[data-scope='desk:FX'][data-state=HALTED]").count() == 1
    assert page.locator("#trading-state-form").count() == 0
    _shots(page, "compliance-trading-states")
    page.goto("/admin/risk/risklimits/grants/")
    assert page.locator("[data-desk=FX]").count() == 1
    _shots(page, "compliance-grants")
    page.goto("/admin/risk/risklimits/dashboard/?book=FXSPOT")
    page.wait_for_selector("#itirp-dashboard[data-scope='book:FXSPOT']")
    _shots(page, "compliance-dashboard-book")
