"""The risk dashboard: measures against limits, breaker state, the htmx partial, the snapshot task."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_dashboard_when_open_order_then_shows_it_and_measures(
    risk_manager: Any, staff_client: Any, open_order: Any
) -> None:
    response = staff_client(risk_manager).get("/admin/risk/risklimits/dashboard/")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-open-orders="1"' in page and 'data-kill-switch="off"' in page
    assert "htmx.min.js" in page and 'hx-trigger="every 5s"' in page
    cards = {c["key"]: c for c in response.context["cards"]}
    assert cards["max_daily_volume"]["used"] == Decimal("1500")


def test_dashboard_when_htmx_request_then_only_the_panel(risk_manager: Any, staff_client: Any) -> None:
    response = staff_client(risk_manager).get("/admin/risk/risklimits/dashboard/", HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="itirp-dashboard"') and "<html" not in page


def test_dashboard_when_breaker_raises_then_unknown(risk_manager: Any, staff_client: Any, monkeypatch: Any) -> None:
    import orders.breaker

    def broken() -> dict[str, Any]:
        raise ConnectionError("redis down")

    monkeypatch.setattr(orders.breaker, "breaker_snapshot", broken)
    page = staff_client(risk_manager).get("/admin/risk/risklimits/dashboard/").content.decode()
    assert 'data-breaker="UNKNOWN"' in page


def test_dashboard_when_breaker_readable_then_its_state(risk_manager: Any, staff_client: Any, monkeypatch: Any) -> None:
    import orders.breaker

    monkeypatch.setattr(
        orders.breaker, "breaker_snapshot", lambda: {"status": "HALF_OPEN", "failures": 5, "open_until": None}
    )
    page = staff_client(risk_manager).get("/admin/risk/risklimits/dashboard/").content.decode()
    assert 'data-breaker="HALF_OPEN"' in page and "5 consecutive failure(s)" in page


def test_snapshot_task_when_run_then_chart_has_the_point(risk_manager: Any, staff_client: Any, open_order: Any) -> None:
    from risk.models import ExposureSnapshot
    from risk.tasks import exposure_snapshot

    exposure_snapshot.apply()
    snapshot = ExposureSnapshot.objects.get()
    assert snapshot.open_volume == Decimal("1500")
    response = staff_client(risk_manager).get("/admin/risk/risklimits/dashboard/")
    assert response.context["chart"]["points"] == 2  # the snapshot and now
