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
