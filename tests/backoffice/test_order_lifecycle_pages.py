"""The order lifecycle in the back office (issue 16.8): the order page shows the venue terms, fills and
amendments; the internal venue's book depth per instrument is for those who see the risk dashboard."""

from __future__ import annotations

import re
from typing import Any

import pytest

from accounts.models import User
from tests.support import lifecycle

pytestmark = pytest.mark.django_db

BOOK = "/admin/orders/order/book/"


@pytest.fixture(autouse=True)
def _sync_execution(settings: Any, tmp_path: Any, monkeypatch: Any) -> None:
    lifecycle.sync_execution(settings, tmp_path, monkeypatch)


@pytest.fixture
def market(trader: Any, trader2: Any) -> lifecycle.Market:
    return lifecycle.aapl_market(trader, trader2)


def text(html: str) -> str:
    """The page's text with tags dropped and white space collapsed, to assert what a person reads."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_order_page_when_partially_filled_then_shows_venue_terms_vwap_and_fills(
    risk_manager: Any, staff_client: Any, market: lifecycle.Market
) -> None:
    response = staff_client(risk_manager).get(f"/admin/orders/order/{market.ask.pk}/change/")
    assert response.status_code == 200
    page = text(response.content.decode())
    assert "Venue: INTERNAL (Internal order book) · its book of AAPL Type: LIMIT TIF: GTC Leaves: 6" in page
    assert 'href="/admin/orders/order/book/?symbol=AAPL"' in response.content.decode()
    assert "Executed quantity: 4 Executed price (VWAP of the fills): 101.00" in page
    fill = market.ask.fills.get()
    # the fill row: time with seconds in UTC, readable numbers (no 4.00000000)
    assert f"{fill.created_at:%Y-%m-%d %H:%M:%S} UTC" in page
    assert f"{fill.venue_execution_id} 4 101.00" in page
    assert "4.00000000" not in page and "101.00000000" not in page
    assert "No amendments." in page


def test_order_page_when_amended_then_table_of_requests_with_outcome_and_violations(
    risk_manager: Any, staff_client: Any, market: lifecycle.Market
) -> None:
    response = staff_client(risk_manager).get(f"/admin/orders/order/{market.bid.pk}/change/")
    html = response.content.decode()
    table = text(html[html.index('id="itirp-amendments"') : html.index("</table>", html.index("itirp-amendments"))])
    rows = table.split(" UTC ")
    assert len(rows) == 3  # two amendments, the header before them
    assert "trader1 8 → 9 99.00 → 99.50 AMENDED" in rows[1]
    assert "trader1 9 → 100,000 99.50 → 99.50 REJECTED" in rows[2]
    assert "max_position_size" in rows[2].lower() or "position" in rows[2].lower()
    assert 'class="itirp-amend-rejected"' in html
    page = text(html)
    assert "Quantity: 9 Price: 99.50" in page and "Leaves: 9 " in page


def test_order_list_when_lifecycle_orders_then_venue_type_tif_leaves_columns_and_filters(
    risk_manager: Any, staff_client: Any, market: lifecycle.Market
) -> None:
    client = staff_client(risk_manager)
    page = client.get("/admin/orders/order/").content.decode()
    for column in ("column-venue_code", "column-type_code", "column-tif", "column-leaves_display"):
        assert column in page
    assert "venue__exact=INTERNAL" in page and "order_type__exact=MARKET" in page
    internal = client.get("/admin/orders/order/?venue__exact=INTERNAL").context["cl"]
    assert internal.result_count == 6
    assert client.get("/admin/orders/order/?venue__exact=SIM").context["cl"].result_count == 0


def test_book_depth_when_resting_orders_then_levels_best_first_with_orders_and_last_trade(
    risk_manager: Any, staff_client: Any, market: lifecycle.Market
) -> None:
    response = staff_client(risk_manager).get(BOOK, {"symbol": "AAPL"})
    assert response.status_code == 200
    ctx = response.context
    assert [(str(lv["price"]), str(lv["quantity"]), lv["orders"]) for lv in ctx["bids"]] == [
        ("99.50000000", "9.00000000", 1),
        ("98.00000000", "3.00000000", 1),
    ]
    assert [(lv["price_text"], lv["quantity_text"], lv["orders"]) for lv in ctx["asks"]] == [
        ("101.00", "6", 1),
        ("102.00", "12", 2),
    ]
    assert (ctx["best_bid_text"], ctx["best_ask_text"], ctx["spread_text"]) == ("99.50", "101.00", "1.50")
    assert [(t["price"], t["quantity"], t["side"]) for t in ctx["trades"]] == [("101.00", "4", "BUY")]
    page = response.content.decode()
    assert 'data-orders="2"' in page and 'hx-trigger="every 3s"' in page and "htmx.min.js" in page
    assert "/admin/orders/order/?q=AAPL&amp;venue__exact=INTERNAL" in page
    aapl = next(i for i in ctx["instruments"] if i["symbol"] == "AAPL")
    assert aapl["resting"] == 5  # 3 asks and 2 bids
    assert len(ctx["instruments"]) >= 10  # every listed instrument is in the picker


def test_book_depth_when_no_symbol_then_the_first_with_resting_orders(
    risk_manager: Any, staff_client: Any, market: lifecycle.Market
) -> None:
    assert staff_client(risk_manager).get(BOOK).context["symbol"] == "AAPL"


def test_book_depth_when_empty_book_then_says_so(risk_manager: Any, staff_client: Any) -> None:
    page = staff_client(risk_manager).get(BOOK, {"symbol": "MSFT"}).content.decode()
    assert "No resting bids." in page and "No resting asks." in page and "No trades on the internal venue" in page


def test_book_depth_when_unknown_symbol_then_404(risk_manager: Any, staff_client: Any) -> None:
    assert staff_client(risk_manager).get(BOOK, {"symbol": "NOPE"}).status_code == 404


def test_book_depth_when_htmx_request_then_only_the_panel(
    risk_manager: Any, staff_client: Any, market: lifecycle.Market
) -> None:
    page = staff_client(risk_manager).get(BOOK, {"symbol": "AAPL"}, HTTP_HX_REQUEST="true").content.decode()
    assert page.lstrip().startswith('<div id="itirp-book"') and "<html" not in page


@pytest.mark.parametrize("role", ["RISK_MANAGER", "COMPLIANCE", "ADMIN"])
def test_book_depth_when_staff_who_sees_the_dashboard_then_allowed_and_linked(
    role: str, make_user: Any, staff_client: Any
) -> None:
    client = staff_client(make_user(f"u-{role.lower()}", role))
    assert client.get(BOOK).status_code == 200
    index = client.get("/admin/").content.decode()
    assert index.count(f'href="{BOOK}"') == 2  # the nav and the tile


def test_book_depth_when_trader_then_sent_to_sign_in(trader: Any, staff_client: Any) -> None:
    response = staff_client(trader).get(BOOK)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_book_depth_when_staff_without_risk_permission_then_403(staff_client: Any) -> None:
    clerk = User.objects.create_user(username="clerk", password="clerk-pass-1", is_staff=True)
    assert staff_client(clerk).get(BOOK).status_code == 403


def test_book_depth_poll_when_deep_book_then_queries_do_not_grow_with_it(
    risk_manager: Any, staff_client: Any, market: lifecycle.Market, trader: Any, django_assert_max_num_queries: Any
) -> None:
    for tick in range(10):  # ten more bid levels: the poll still reads the book in one query
        lifecycle.internal(trader, "BUY", "1", f"{90 + tick / 10:.2f}")
    client = staff_client(risk_manager)
    client.get(BOOK, {"symbol": "AAPL"}, HTTP_HX_REQUEST="true")  # warm the session and permission caches
    # the session, the user and its permissions, then resting counts, instruments, the levels, the trades: none per level
    with django_assert_max_num_queries(8):
        response = client.get(BOOK, {"symbol": "AAPL", "levels": "50"}, HTTP_HX_REQUEST="true")
    assert len(response.context["bids"]) == 12
