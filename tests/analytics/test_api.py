"""GET /risk/var, GET /risk/stress/scenarios, POST /risk/stress and GET /risk/pnl (API.md, Analytics): figures
through the endpoints against hand-computed values, bad input refused with nothing written, who sees what."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from scipy import stats

from audit.models import Event
from books.services import grant_add
from risk.models import Position, RiskLimits, ScopeState
from tests.support.analytics import random_walk

pytestmark = pytest.mark.django_db

AAPL_PRICE = 148.0  # the test market's price (tests/support/market.py)


def D(value: Any) -> Decimal:  # noqa: N802 - reads as the Decimal it makes
    """A money figure of the answer (a JSON number) as the Decimal it stands for."""
    return Decimal(str(value))


def _written() -> tuple[Any, ...]:
    return (
        list(RiskLimits.objects.order_by("pk").values()),
        list(ScopeState.objects.values()),
        Position.objects.count(),
        Event.objects.exclude(event_type__in=["PERMISSION_DENIED", "LOGIN_SUCCEEDED"]).count(),
    )


@pytest.fixture
def aapl(hold: Any, history: Any) -> list[float]:
    """1,000 AAPL in book MAIN (148,000 USD at the market's 148) with 501 days of history."""
    closes = random_walk(AAPL_PRICE, 0.015, 501, seed=9)
    history("AAPL", closes)
    hold("AAPL", 1000, "140.00", trader="trader1")
    return closes


@pytest.mark.parametrize("horizon", [1, 10])
def test_var_parametric_of_one_position_is_z_sigma_value_sqrt_h(
    aapl: list[float], risk_manager: Any, client_for: Any, horizon: int
) -> None:
    response = client_for(risk_manager).get(
        "/api/v1/risk/var", {"scope": "firm", "method": "parametric", "confidence": "0.99", "horizon_days": horizon}
    )
    assert response.status_code == 200, response.content
    data = response.json()
    sigma = np.diff(np.log(aapl)).std(ddof=1)
    expected = float(stats.norm.ppf(0.99) * sigma * 1000 * AAPL_PRICE * math.sqrt(horizon))
    assert abs(D(data["var"]) - Decimal(repr(round(expected, 2)))) <= Decimal("0.01")
    assert D(data["expected_shortfall"]) >= D(data["var"])
    assert data["observations"] == 500 and data["scope"] == "firm" and data["method"] == "parametric"
    assert data["horizon_days"] == horizon and data["confidence"] == 0.99 and data["as_of"]
    assert D(data["var"]) == D(data["var"]).quantize(Decimal("0.01"))  # money to 2 places


def test_var_historical_of_a_known_series_through_the_api(
    hold: Any, history: Any, risk_manager: Any, client_for: Any
) -> None:
    # 101 closes: 5 falls of 1..5 %, then 95 rises of 0.1 %; AAPL's mark stays the market's 148.
    simple = [-0.01, -0.02, -0.03, -0.04, -0.05] + [0.001] * 95
    closes = [100.0]
    for r in simple:
        closes.append(closes[-1] * (1 + r))
    history("AAPL", closes)
    hold("AAPL", 1000, "148.00")
    data = (
        client_for(risk_manager)
        .get("/api/v1/risk/var", {"scope": "book:MAIN", "method": "historical", "confidence": "0.95"})
        .json()
    )
    # The 5th largest loss is 1 % of 148,000; the mean of the five is 3 %. (Closes are stored to 6 places.)
    assert abs(D(data["var"]) - Decimal("1480.00")) < Decimal("0.50")
    assert abs(D(data["expected_shortfall"]) - Decimal("4440.00")) < Decimal("0.50")
    assert data["observations"] == 100


def test_var_three_methods_answer_and_agree(aapl: list[float], risk_manager: Any, client_for: Any) -> None:
    client = client_for(risk_manager)
    values = {}
    for method in ("historical", "parametric", "monte_carlo"):
        data = client.get("/api/v1/risk/var", {"scope": "desk:EQ", "method": method}).json()
        values[method] = float(data["var"])
        assert float(data["expected_shortfall"]) >= values[method] > 0
    assert max(values.values()) / min(values.values()) < 1.35, values
    mc = client.get("/api/v1/risk/var", {"method": "monte_carlo"}).json()
    assert mc["paths"] == 10_000


def test_var_with_order_answers_incremental_var(aapl: list[float], risk_manager: Any, client_for: Any) -> None:
    client = client_for(risk_manager)
    query = {"scope": "firm", "method": "parametric"}
    base = client.get("/api/v1/risk/var", query).json()
    doubled = client.get("/api/v1/risk/var", {**query, "with_order": "BUY:AAPL:1000"}).json()
    # One instrument: doubling the position doubles the parametric VaR.
    assert abs(D(doubled["var_with_order"]) - 2 * D(base["var"])) <= Decimal("0.02")
    assert D(doubled["incremental_var"]) == D(doubled["var_with_order"]) - D(doubled["var"])
    hedged = client.get(
        "/api/v1/risk/var", {**query, "with_order": '{"side": "SELL", "symbol": "AAPL", "quantity": "1000"}'}
    ).json()
    assert D(hedged["var_with_order"]) == 0 and D(hedged["incremental_var"]) < 0
    assert "var_with_order" not in base


def test_var_of_a_scope_without_positions_is_zero(risk_manager: Any, client_for: Any) -> None:
    for method in ("historical", "parametric", "monte_carlo"):
        response = client_for(risk_manager).get("/api/v1/risk/var", {"scope": "symbol:MSFT", "method": method})
        assert response.status_code == 200, response.content
        assert (D(response.json()["var"]), D(response.json()["expected_shortfall"])) == (0, 0)


def test_var_higher_confidence_never_lowers_var(aapl: list[float], risk_manager: Any, client_for: Any) -> None:
    client = client_for(risk_manager)
    for method in ("historical", "parametric", "monte_carlo"):
        figures = [
            D(client.get("/api/v1/risk/var", {"method": method, "confidence": c}).json()["var"])
            for c in ("0.9", "0.95", "0.975", "0.99", "0.999")
        ]
        assert figures == sorted(figures), (method, figures)


@pytest.mark.parametrize(
    "query",
    [
        {"method": "magic"},
        {"scope": "galaxy:far"},
        {"scope": "desk:NOPE"},
        {"scope": "book:"},
        {"confidence": "0.5"},
        {"confidence": "0.9999"},
        {"confidence": "1.2"},
        {"confidence": "abc"},
        {"horizon_days": "0"},
        {"horizon_days": "251"},
        {"horizon_days": "1.5"},
        {"with_order": "BUY:AAPL"},
        {"with_order": "HOLD:AAPL:1"},
        {"with_order": "BUY:AAPL:-5"},
        {"with_order": "BUY:NOSUCH:5"},
        {"with_order": "{not json"},
    ],
)
def test_var_bad_input_400_and_nothing_written(query: dict[str, str], risk_manager: Any, client_for: Any) -> None:
    client = client_for(risk_manager)
    before = _written()
    response = client.get("/api/v1/risk/var", query)
    assert response.status_code == 400, response.content
    assert _written() == before


def test_var_boundaries_accepted(aapl: list[float], risk_manager: Any, client_for: Any) -> None:
    client = client_for(risk_manager)
    for query in ({"confidence": "0.51", "horizon_days": "1"}, {"confidence": "0.9998", "horizon_days": "250"}):
        assert client.get("/api/v1/risk/var", query).status_code == 200


def test_stress_scenarios_list_the_named_and_the_replays(aapl: list[float], trader: Any, client_for: Any) -> None:
    response = client_for(trader).get("/api/v1/risk/stress/scenarios")
    assert response.status_code == 200, response.content
    found = {s["name"]: s for s in response.json()["scenarios"]}
    assert {"equity_crash", "options_rates_vol", "usd_up_10", "crypto_crash", "replay_2008", "replay_2020"} <= set(
        found
    )
    assert found["equity_crash"]["shocks"]["asset_class:EQUITY"] == -0.2
    # The replays come from the stored history: AAPL's move over its worst 20 days and 5 days.
    moves = np.diff(np.log(aapl))
    worst20 = min(np.expm1(moves[i : i + 20].sum()) for i in range(len(moves) - 19))
    assert found["replay_2008"]["shocks"]["symbol:AAPL"] == pytest.approx(worst20, abs=1e-6)
    assert found["replay_2020"]["shocks"]["symbol:AAPL"] < 0


def test_stress_pnl_is_shock_times_exposure_per_position_and_total(
    hold: Any, fx_desk: Any, risk_manager: Any, client_for: Any
) -> None:
    hold("AAPL", 100, "148")  # 14,800
    hold("MSFT", -50, "295")  # -14,750
    hold("BTCUSD", "0.5", "60000", book="FXMAIN")  # 30,000
    hold("SAP", 10, "175")  # 1,750 EUR at EURUSD 1.08 = 1,890 USD
    client = client_for(risk_manager)
    body = {"scope": "firm", "shocks": {"asset_class:EQUITY": -0.10, "symbol:AAPL": -0.25, "asset_class:CRYPTO": -0.4}}
    response = client.post("/api/v1/risk/stress", body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    pnl = {(p["book"], p["symbol"]): D(p["pnl"]) for p in data["positions"]}
    assert pnl == {
        ("MAIN", "AAPL"): Decimal("-3700.00"),
        ("MAIN", "MSFT"): Decimal("1475.00"),
        ("FXMAIN", "BTCUSD"): Decimal("-12000.00"),
        ("MAIN", "SAP"): Decimal("-189.00"),
    }
    assert D(data["pnl"]) == sum(pnl.values())
    named = client.post("/api/v1/risk/stress", {"scope": "desk:EQ", "scenario": "equity_crash"}, format="json").json()
    assert {p["symbol"]: D(p["pnl"]) for p in named["positions"]} == {
        "AAPL": Decimal("-2960.00"),
        "MSFT": Decimal("2950.00"),
        "SAP": Decimal("-378.00"),
    }
    usd = client.post("/api/v1/risk/stress", {"scope": "firm", "scenario": "usd_up_10"}, format="json").json()
    assert D(usd["pnl"]) == Decimal("-171.82")  # 1,890 x (1 / 1.1 - 1): only the EUR stock moves


def test_stress_options_revalued_under_the_vol_scenario(hold: Any, risk_manager: Any, client_for: Any) -> None:
    hold("AAPL-20270115-C150", 10, "7.50")
    data = (
        client_for(risk_manager)
        .post("/api/v1/risk/stress", {"scope": "firm", "scenario": "options_rates_vol"}, format="json")
        .json()
    )
    assert D(data["pnl"]) > 0  # a long call gains from higher volatility and rates


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "firm"},
        {"scope": "firm", "scenario": "equity_crash", "shocks": {"vol": 0.1}},
        {"scope": "firm", "scenario": "no_such"},
        {"scope": "firm", "shocks": {"asset_class:BONDS": -0.1}},
        {"scope": "firm", "shocks": {"symbol:AAPL": -2}},
        {"scope": "firm", "shocks": {}},
        {"scope": "nowhere", "scenario": "equity_crash"},
    ],
)
def test_stress_bad_input_400_and_nothing_written(body: dict[str, Any], risk_manager: Any, client_for: Any) -> None:
    before = _written()
    response = client_for(risk_manager).post("/api/v1/risk/stress", body, format="json")
    assert response.status_code == 400, response.content
    assert _written() == before


def test_pnl_by_scope(hold: Any, risk_manager: Any, client_for: Any) -> None:
    hold("AAPL", 100, "140.00")  # the market's 148: unrealised 800
    response = client_for(risk_manager).get("/api/v1/risk/pnl", {"scope": "book:MAIN"})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["scope"] == "book:MAIN" and data["currency"] == "USD" and data["as_of"]
    assert D(data["unrealized_pnl"]) == Decimal("800") and D(data["realized_pnl"]) == 0
    assert "daily_pnl" in data
    assert client_for(risk_manager).get("/api/v1/risk/pnl", {"scope": "desk:NOPE"}).status_code == 400


def test_trader_cannot_see_another_desk_or_trader(
    aapl: list[float], fx_desk: Any, trader: Any, trader2: Any, client_for: Any
) -> None:
    client = client_for(trader)
    for scope, code in (
        ("book:FXMAIN", 403),
        ("desk:FX", 403),
        ("trader:trader2", 403),
        ("book:MAIN", 200),
        ("trader:trader1", 200),
    ):
        assert client.get("/api/v1/risk/var", {"scope": scope}).status_code == code, scope
        assert client.get("/api/v1/risk/pnl", {"scope": scope}).status_code == code, scope
        status = client.post("/api/v1/risk/stress", {"scope": scope, "scenario": "equity_crash"}, format="json")
        assert status.status_code == code, scope


def test_risk_manager_and_compliance_see_any_scope(
    aapl: list[float], fx_desk: Any, trader: Any, risk_manager: Any, compliance: Any, client_for: Any
) -> None:
    grant_add(actor=None, obj=fx_desk.desk, user=risk_manager, permission="manage")
    for user in (risk_manager, compliance):
        assert client_for(user).get("/api/v1/risk/var", {"scope": "desk:FX"}).status_code == 200
    assert client_for(risk_manager).get("/api/v1/risk/var", {"scope": "trader:trader1"}).status_code == 200


def test_anonymous_401(api: Any) -> None:
    assert api.get("/api/v1/risk/var").status_code == 401
    assert api.post("/api/v1/risk/stress", {}, format="json").status_code == 401


def test_stress_replay_moves_each_position_by_its_move_in_the_worst_window(
    aapl: list[float], risk_manager: Any, client_for: Any
) -> None:
    client = client_for(risk_manager)
    listed = {s["name"]: s for s in client.get("/api/v1/risk/stress/scenarios").json()["scenarios"]}
    shock = listed["replay_2020"]["shocks"]["symbol:AAPL"]
    data = client.post("/api/v1/risk/stress", {"scope": "firm", "scenario": "replay_2020"}, format="json").json()
    assert data["scenario"] == "replay_2020" and data["shocks"]["symbol:AAPL"] == shock
    assert abs(D(data["pnl"]) - D(round(shock * 1000 * AAPL_PRICE, 2))) <= Decimal("0.10")
