"""The risk-analytics page of the back office (analytics/admin_views.py): what it shows, and to whom."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from analytics.services import var_limits_check
from books.services import grant_add
from risk.models import RiskLimits
from tests.support.analytics import random_walk

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(hold: Any, history: Any, fx_desk: Any) -> None:
    history("AAPL", random_walk(148.0, 0.02, 501, seed=4))
    history("BTCUSD", random_walk(60000.0, 0.04, 501, seed=5))
    hold("AAPL", 1000, "148")
    hold("BTCUSD", "0.5", "60000", book="FXMAIN")


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_page_shows_three_methods_histogram_stress_and_the_days_history(
    market: None, risk_manager: Any, client_for: Any
) -> None:
    from books.models import Desk

    grant_add(actor=None, obj=Desk.objects.get(code="EQ"), user=risk_manager, permission="manage")
    RiskLimits.objects.update_or_create(scope="DESK", scope_key="EQ", defaults={"max_var": 1})
    var_limits_check()
    response = _client(risk_manager).get("/admin/analytics/varsnapshot/risk/desk:EQ/")
    assert response.status_code == 200
    html = response.content.decode()
    for method in ("historical", "parametric", "monte_carlo"):
        assert f'data-method="{method}"' in html
    assert 'id="analytics-histogram"' in html and 'id="analytics-stress-chart"' in html
    for name in ("equity_crash", "options_rates_vol", "usd_up_10", "crypto_crash", "replay_2008", "replay_2020"):
        assert f'data-scenario="{name}"' in html
    assert 'id="analytics-history-chart"' in html and 'data-scope-state="REDUCING"' in html
    # The navigation links the page.
    assert "/admin/analytics/varsnapshot/risk/" in _client(risk_manager).get("/admin/").content.decode()


def test_risk_manager_sees_only_the_desks_they_manage_compliance_sees_all(
    market: None, risk_manager: Any, compliance: Any, trader: Any
) -> None:
    from books.models import Desk

    grant_add(actor=None, obj=Desk.objects.get(code="EQ"), user=risk_manager, permission="manage")
    manager = _client(risk_manager)
    assert manager.get("/admin/analytics/varsnapshot/risk/book:MAIN/").status_code == 200
    assert manager.get("/admin/analytics/varsnapshot/risk/desk:FX/").status_code == 403
    assert manager.get("/admin/analytics/varsnapshot/risk/book:FXMAIN/").status_code == 403
    page = manager.get("/admin/analytics/varsnapshot/risk/firm/").content.decode()
    assert '<option value="desk:EQ"' in page and '<option value="desk:FX"' not in page
    assert _client(compliance).get("/admin/analytics/varsnapshot/risk/desk:FX/").status_code == 200
    assert _client(risk_manager).get("/admin/analytics/varsnapshot/risk/desk:NOPE/").status_code == 404
    # A trader is not staff: the admin sends them to its login.
    assert _client(trader).get("/admin/analytics/varsnapshot/risk/firm/").status_code == 302


def test_scope_picker_redirects_to_the_page(market: None, compliance: Any) -> None:
    response = _client(compliance).get("/admin/analytics/varsnapshot/risk/", {"scope": "book:FXMAIN"})
    assert response.status_code == 302 and response["Location"].endswith("/risk/book:FXMAIN/")


FIRM_FORM = {
    "max_position_size": "1000000.00",
    "max_daily_volume": "10000000.00",
    "max_net_exposure": "5000000.00",
    "max_gross_exposure": "15000000.00",
}


def test_firm_limits_form_sets_max_var_with_one_event(risk_manager: Any) -> None:
    from audit.models import Event
    from risk.store import firm_limits

    url = f"/admin/risk/risklimits/{firm_limits().pk}/change/"
    client = _client(risk_manager)
    assert 'name="max_var"' in client.get(url).content.decode()
    response = client.post(url, {**FIRM_FORM, "max_var": "250000", "reason": "VaR budget"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert firm_limits().max_var == 250000
    (event,) = Event.objects.filter(event_type="LIMITS_CHANGED")
    assert event.payload["changed"] == {"max_var": {"old": None, "new": "250000.00"}}
    refused = client.post(url, {**FIRM_FORM, "max_var": "-1", "reason": "x"})
    assert refused.status_code == 200 and firm_limits().max_var == 250000


def test_scope_limits_form_sets_max_var(risk_manager: Any) -> None:
    from books.models import Desk

    grant_add(actor=None, obj=Desk.objects.get(code="EQ"), user=risk_manager, permission="manage")
    response = _client(risk_manager).post(
        "/admin/risk/risklimits/scopes/desk:EQ/", {"max_var": "5000", "reason": "desk VaR budget"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RiskLimits.objects.get(scope="DESK", scope_key="EQ").max_var == 5000
