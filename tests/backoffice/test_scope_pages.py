"""Back-office pages by scope: limits per desk and book, trading states, the filtered dashboard, grants.

risk1 is granted desk EQ (and so its book MAIN); desk FX and its book FXSPOT are someone else's: risk1 never
sees nor changes them. Compliance sees every desk and changes none.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from guardian.shortcuts import assign_perm

from audit.models import Event
from books.models import Book, Desk
from risk.models import Position, RiskLimits, ScopeState
from tests.support.market import price

pytestmark = pytest.mark.django_db

LIMITS = "/admin/risk/risklimits/scopes/"
STATES = "/admin/risk/risklimits/trading-states/"
DASHBOARD = "/admin/risk/risklimits/dashboard/"
GRANTS = "/admin/risk/risklimits/grants/"


@pytest.fixture
def desks(risk_manager: Any) -> dict[str, Any]:
    eq, _ = Desk.objects.get_or_create(code="EQ", defaults={"name": "Equities"})
    main, _ = Book.objects.get_or_create(code="MAIN", defaults={"name": "Main book", "desk": eq})
    fx = Desk.objects.create(code="FX", name="Foreign exchange")
    fxspot = Book.objects.create(code="FXSPOT", name="FX spot", desk=fx)
    assign_perm("books.manage_desk", risk_manager, eq)
    return {"eq": eq, "main": main, "fx": fx, "fxspot": fxspot}


def _position(scope: str, symbol: str = "AAPL", quantity: str = "100", at: str = "150") -> Position:
    price(symbol, at)  # the market where the position is valued
    return Position.objects.create(scope=scope, symbol=symbol, quantity=Decimal(quantity), average_price=Decimal(at))


# Limits by scope


def test_scope_list_when_risk_manager_of_one_desk_then_only_that_desk_and_its_books(
    desks: Any, risk_manager: Any, staff_client: Any
) -> None:
    response = staff_client(risk_manager).get(LIMITS)
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-scope="desk:EQ"' in page and 'data-scope="book:MAIN"' in page
    assert "desk:FX" not in page and "FXSPOT" not in page


def test_scope_list_when_compliance_then_every_desk_read_only(desks: Any, compliance: Any, staff_client: Any) -> None:
    response = staff_client(compliance).get(LIMITS)
    entries = {e["scope"]: e for e in response.context["entries"]}
    assert {"desk:EQ", "desk:FX", "book:MAIN", "book:FXSPOT"} <= set(entries)
    assert not any(e["editable"] for e in entries.values())


def test_scope_list_when_limit_set_then_usage_bar(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    RiskLimits.objects.create(scope="DESK", scope_key="EQ", max_position_size=Decimal("20000"))
    _position("desk:EQ")  # 15,000 of 20,000
    response = staff_client(risk_manager).get(LIMITS)
    eq = next(e for e in response.context["entries"] if e["scope"] == "desk:EQ")
    (row,) = eq["limits"]
    assert row["name"] == "max_position_size" and row["bar"]["pct"] == 75.0 and row["bar"]["level"] == "warn"


def test_scope_form_when_other_desk_then_403(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    client = staff_client(risk_manager)
    assert client.get(f"{LIMITS}desk:FX/").status_code == 403
    assert client.get(f"{LIMITS}book:FXSPOT/").status_code == 403
    body = {"max_position_size": "10", "reason": "not mine"}
    assert client.post(f"{LIMITS}desk:FX/", body).status_code == 403
    assert not RiskLimits.objects.filter(scope="DESK", scope_key="FX").exists()


def test_scope_form_when_compliance_then_read_only_and_post_403(desks: Any, compliance: Any, staff_client: Any) -> None:
    client = staff_client(compliance)
    response = client.get(f"{LIMITS}desk:FX/")
    assert response.status_code == 200 and 'id="read-only-note"' in response.content.decode()
    assert 'id="scope-limits-form"' not in response.content.decode()
    assert client.post(f"{LIMITS}desk:FX/", {"max_position_size": "10", "reason": "x"}).status_code == 403


def test_scope_form_when_bad_scope_then_404(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    client = staff_client(risk_manager)
    assert client.get(f"{LIMITS}nonsense/").status_code == 404
    assert client.get(f"{LIMITS}firm/").status_code == 404  # the firm has its own page
    assert client.get(f"{LIMITS}desk:NOPE/").status_code == 403  # an unknown desk is nobody's


def test_scope_form_when_no_reason_then_error_and_nothing_saved(
    desks: Any, risk_manager: Any, staff_client: Any
) -> None:
    response = staff_client(risk_manager).post(f"{LIMITS}desk:EQ/", {"max_position_size": "5000", "reason": " "})
    assert response.status_code == 200
    assert "A reason is required" in response.content.decode()
    assert not RiskLimits.objects.filter(scope="DESK", scope_key="EQ").exists()


def test_scope_form_when_own_desk_then_saved_and_audited(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    response = staff_client(risk_manager).post(
        f"{LIMITS}desk:EQ/", {"max_position_size": "5000", "max_order_quantity": "100", "reason": "desk cap"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    limits = RiskLimits.objects.get(scope="DESK", scope_key="EQ")
    assert (limits.max_position_size, limits.max_order_quantity) == (Decimal("5000"), Decimal("100"))
    assert limits.max_net_exposure is None  # not set: inherits
    event = Event.objects.filter(event_type="LIMITS_CHANGED").latest("sequence")
    assert event.actor_username == "risk1"


def test_scope_form_when_own_book_then_saved(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    response = staff_client(risk_manager).post(f"{LIMITS}book:MAIN/", {"max_order_value": "25000", "reason": "fat"})
    assert response.status_code == 302
    assert RiskLimits.objects.get(scope="BOOK", scope_key="MAIN").max_order_value == Decimal("25000")


def test_scope_form_when_new_limit_below_usage_then_warns_before_saving(
    desks: Any, risk_manager: Any, staff_client: Any
) -> None:
    _position("desk:EQ")  # 15,000
    client = staff_client(risk_manager)
    body = {"max_position_size": "1000", "reason": "cut"}
    response = client.post(f"{LIMITS}desk:EQ/", body)
    page = response.content.decode()
    assert response.status_code == 200 and 'id="scope-limits-warning"' in page
    assert 'below what is used now (<span class="itirp-num">15,000.00' in page
    assert not RiskLimits.objects.filter(scope="DESK", scope_key="EQ").exists()
    # The confirmation names the values it confirms: a bare "yes" (or another value) asks again.
    assert client.post(f"{LIMITS}desk:EQ/", {**body, "confirm": "yes"}).status_code == 200
    response = client.post(f"{LIMITS}desk:EQ/", {**body, "confirm": "max_position_size=1000"})
    assert response.status_code == 302
    assert RiskLimits.objects.get(scope="DESK", scope_key="EQ").max_position_size == Decimal("1000")


def test_scope_form_when_negative_then_error(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    response = staff_client(risk_manager).post(f"{LIMITS}desk:EQ/", {"max_position_size": "-5", "reason": "x"})
    assert response.status_code == 200 and response.context["form"].errors["max_position_size"]


def test_scope_form_when_unknown_trader_then_404(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    assert staff_client(risk_manager).get(f"{LIMITS}trader:nobody/").status_code == 404
    assert staff_client(risk_manager).get(f"{LIMITS}trader:risk1/").status_code == 200


def test_scope_form_when_symbol_then_risk_manager_edits_it(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    response = staff_client(risk_manager).post(f"{LIMITS}symbol:TSLA/", {"max_order_quantity": "500", "reason": "vol"})
    assert response.status_code == 302
    assert RiskLimits.objects.get(scope="SYMBOL", scope_key="TSLA").max_order_quantity == Decimal("500")
    listed = staff_client(risk_manager).get(LIMITS).context["entries"]
    assert any(e["scope"] == "symbol:TSLA" and e["editable"] for e in listed)


def test_scope_form_when_cleared_then_inherits_again(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    RiskLimits.objects.create(scope="DESK", scope_key="EQ", max_position_size=Decimal("20000"))
    response = staff_client(risk_manager).post(f"{LIMITS}desk:EQ/", {"max_position_size": "", "reason": "lift"})
    assert response.status_code == 302
    limits = RiskLimits.objects.filter(scope="DESK", scope_key="EQ").first()
    assert limits is None or limits.max_position_size is None


def test_scope_go_when_symbol_then_its_form(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    response = staff_client(risk_manager).get(f"{LIMITS}go/", {"scope": "symbol:aapl"})
    assert response.status_code == 302 and response["Location"].endswith("/scopes/symbol:AAPL/")


# Trading states


def test_trading_states_when_states_set_then_only_visible_scopes_listed(
    desks: Any, risk_manager: Any, compliance: Any, staff_client: Any
) -> None:
    ScopeState.objects.update_or_create(scope="desk:FX", defaults={"trading_state": "HALTED", "reason": "their desk"})
    ScopeState.objects.update_or_create(scope="book:MAIN", defaults={"trading_state": "REDUCING", "reason": "ours"})
    mine = staff_client(risk_manager).get(STATES)
    assert [s["scope"] for s in mine.context["states"]] == ["book:MAIN"]
    assert "?scope=book%3AMAIN&amp;state=ACTIVE" in mine.content.decode()  # a release link for its manager
    everything = staff_client(compliance).get(STATES)
    assert {s["scope"] for s in everything.context["states"]} == {"desk:FX", "book:MAIN"}
    assert 'id="trading-state-form"' not in everything.content.decode()  # compliance reads only
    assert "state=ACTIVE" not in everything.content.decode()


def test_trading_state_form_when_release_link_then_prefilled(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    response = staff_client(risk_manager).get(STATES, {"scope": "book:MAIN", "state": "ACTIVE"})
    assert response.context["form"].initial == {"scope": "book:MAIN", "state": "ACTIVE"}
    assert response.context["scope_choices"] == ["firm", "desk:EQ", "book:MAIN"]


def test_trading_state_when_other_desk_then_403(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    body = {"scope": "desk:FX", "state": "REDUCING", "reason": "not mine"}
    assert staff_client(risk_manager).post(STATES, body).status_code == 403
    assert not ScopeState.objects.filter(scope="desk:FX").exclude(trading_state="ACTIVE").exists()


def test_trading_state_when_compliance_posts_then_403(desks: Any, compliance: Any, staff_client: Any) -> None:
    body = {"scope": "desk:EQ", "state": "REDUCING", "reason": "x"}
    assert staff_client(compliance).post(STATES, body).status_code == 403


def test_trading_state_when_no_reason_then_error(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    response = staff_client(risk_manager).post(STATES, {"scope": "desk:EQ", "state": "REDUCING", "reason": ""})
    assert response.status_code == 200 and "A reason is required" in response.content.decode()


def test_trading_state_when_halted_then_confirmation_first(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    client = staff_client(risk_manager)
    body = {"scope": "book:MAIN", "state": "HALTED", "reason": "bad fills"}
    response = client.post(STATES, body)
    assert response.status_code == 200 and 'id="trading-state-confirm"' in response.content.decode()
    assert response.context["to_cancel"] == 0  # no open order in MAIN
    assert not ScopeState.objects.filter(scope="book:MAIN", trading_state="HALTED").exists()
    response = client.post(STATES, {**body, "confirm": "yes"})
    assert response.status_code == 302
    assert ScopeState.objects.get(scope="book:MAIN").trading_state == "HALTED"


def test_trading_state_when_reducing_then_set_without_confirmation(
    desks: Any, risk_manager: Any, staff_client: Any
) -> None:
    response = staff_client(risk_manager).post(STATES, {"scope": "desk:EQ", "state": "REDUCING", "reason": "wind down"})
    assert response.status_code == 302
    assert ScopeState.objects.get(scope="desk:EQ").trading_state == "REDUCING"


# Dashboard by desk and book


def test_dashboard_when_own_desk_then_its_positions_only(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    _position("desk:EQ", "AAPL")
    _position("desk:FX", "EURUSD")
    response = staff_client(risk_manager).get(DASHBOARD, {"desk": "EQ"})
    assert response.status_code == 200
    assert [p["symbol"] for p in response.context["positions"]] == ["AAPL"]
    assert response.context["filter"]["desks"] == ["EQ"]
    assert 'data-scope="desk:EQ"' in response.content.decode()


def test_dashboard_when_book_filter_then_htmx_poll_keeps_it(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    _position("book:MAIN", "MSFT")
    response = staff_client(risk_manager).get(DASHBOARD, {"book": "MAIN"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="itirp-dashboard"') and "?book=MAIN" in page
    assert [p["symbol"] for p in response.context["positions"]] == ["MSFT"]


def test_dashboard_when_other_desk_then_403(desks: Any, risk_manager: Any, compliance: Any, staff_client: Any) -> None:
    assert staff_client(risk_manager).get(DASHBOARD, {"desk": "FX"}).status_code == 403
    assert staff_client(risk_manager).get(DASHBOARD, {"book": "FXSPOT"}).status_code == 403
    assert staff_client(compliance).get(DASHBOARD, {"desk": "FX"}).status_code == 200


# Grants


def test_grants_when_risk_manager_then_own_desk_with_holders(desks: Any, risk_manager: Any, staff_client: Any) -> None:
    response = staff_client(risk_manager).get(GRANTS)
    page = response.content.decode()
    assert [d["desk"].code for d in response.context["desks"]] == ["EQ"]
    assert "risk1" in response.context["desks"][0]["manage"]
    assert 'data-desk="FX"' not in page
    assert "/admin/books/desk/" not in page  # the Desk admin would refuse a desk-level grant


def test_grants_when_admin_then_links_to_the_desk_admin(desks: Any, admin_user: Any, staff_client: Any) -> None:
    page = staff_client(admin_user).get(GRANTS).content.decode()
    assert f"/admin/books/desk/{desks['fx'].pk}/change/" in page


def test_grants_when_compliance_then_every_desk(desks: Any, compliance: Any, trader: Any, staff_client: Any) -> None:
    assign_perm("books.trade_book", trader, desks["fxspot"])
    response = staff_client(compliance).get(GRANTS)
    by_code = {d["desk"].code: d for d in response.context["desks"]}
    assert set(by_code) >= {"EQ", "FX"}
    assert by_code["FX"]["books"][0]["trade"] == ["trader1"]


@pytest.mark.parametrize("url", [LIMITS, STATES, GRANTS, f"{LIMITS}desk:EQ/"])
def test_scope_pages_when_trader_then_sent_to_sign_in(url: str, desks: Any, trader: Any, staff_client: Any) -> None:
    response = staff_client(trader).get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_index_when_risk_manager_then_tiles_and_nav_to_scope_pages(risk_manager: Any, staff_client: Any) -> None:
    page = staff_client(risk_manager).get("/admin/").content.decode()
    for url in (LIMITS, STATES, GRANTS):
        assert page.count(f'href="{url}"') == 2  # a tile and the header's nav
