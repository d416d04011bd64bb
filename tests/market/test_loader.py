"""Loading instruments (market.services.instruments_load and `manage.py load_instruments`): the demo set, all or
nothing with the first bad row named, idempotent, JSON and CSV alike, and every change an event."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from audit.models import Event, EventType
from core.exceptions import InvalidInput
from market import directory, services
from market.models import Instrument
from tests.market.conftest import demo_rows

pytestmark = pytest.mark.django_db


def _events(kind: str) -> list[Event]:
    return list(Event.objects.filter(event_type=kind).order_by("sequence"))


def test_demo_file_when_loaded_then_sixteen_instruments_of_every_class(capsys: Any) -> None:
    call_command("load_instruments")

    assert "16 listed, 0 changed, 0 unchanged" in capsys.readouterr().out
    by_class: dict[str, set[str]] = {}
    for symbol, kind in Instrument.objects.values_list("symbol", "asset_class"):
        by_class.setdefault(kind, set()).add(symbol)
    assert by_class == {
        "EQUITY": {"AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA", "JPM", "IBM", "SAP"},
        "FUTURE": {"ESH7"},
        "OPTION": {"AAPL-20270115-C150"},
        "FX": {"EURUSD", "GBPUSD", "USDJPY"},
        "CRYPTO": {"BTCUSD", "ETHUSD"},
    }
    assert set(Instrument.objects.values_list("status", flat=True)) == {"ACTIVE"}
    option = Instrument.objects.get(symbol="AAPL-20270115-C150")
    assert (option.underlying, option.strike, option.option_right, option.multiplier) == (
        "AAPL",
        Decimal(150),
        "CALL",
        Decimal(100),
    )
    assert str(option.expiry) == "2027-01-15"
    eurusd = Instrument.objects.get(symbol="EURUSD")
    assert (eurusd.tick_size, eurusd.lot_size, eurusd.initial_price) == (
        Decimal("0.00001"),
        Decimal(1000),
        Decimal("1.08"),
    )
    assert Instrument.objects.get(symbol="BTCUSD").lot_size == Decimal("0.0001")
    assert Instrument.objects.get(symbol="USDJPY").currency == "JPY"


def test_demo_file_when_loaded_twice_then_second_load_changes_nothing(capsys: Any) -> None:
    call_command("load_instruments")
    events = Event.objects.count()
    before = list(Instrument.objects.values_list("symbol", "updated_at"))
    capsys.readouterr()

    call_command("load_instruments")

    assert "0 listed, 0 changed, 16 unchanged" in capsys.readouterr().out
    assert Event.objects.count() == events
    assert list(Instrument.objects.values_list("symbol", "updated_at")) == before


def test_load_when_new_instruments_then_one_listed_event_each_with_exact_fields(demo: Any) -> None:
    listed = _events(EventType.INSTRUMENT_LISTED)

    assert [e.symbol for e in listed] == [row["symbol"] for row in demo_rows()]
    aapl = listed[0].payload
    assert aapl["symbol"] == "AAPL" and aapl["tick_size"] == "0.01" and aapl["initial_price"] == "148"
    assert aapl["volatility"] == "0.28" and aapl["source"] == "test"
    assert next(e for e in listed if e.symbol == "ESH7").payload["expiry"] == "2027-03-19"


def test_load_when_a_row_changes_then_changed_event_with_old_and_new(demo: Any, risk_manager: Any) -> None:
    rows = demo_rows()
    rows[0].update(tick_size="0.05", name="Apple Inc. (common)")

    result = services.instruments_load(rows, actor=risk_manager, source="test")

    assert (result.listed, result.changed, len(result.unchanged)) == ([], ["AAPL"], 15)
    assert Instrument.objects.get(symbol="AAPL").tick_size == Decimal("0.05")
    [event] = _events(EventType.INSTRUMENT_CHANGED)
    assert event.symbol == "AAPL" and event.actor_username == "risk1"
    assert event.payload["changes"] == {
        "name": ["Apple Inc.", "Apple Inc. (common)"],
        "tick_size": ["0.01", "0.05"],
    }


def test_load_when_a_field_is_left_out_then_the_instrument_keeps_it(demo: Any) -> None:
    services.instrument_set_status("TSLA", "RESTRICTED", actor=None, reason="test")
    row = {k: v for k, v in demo_rows()[4].items() if k != "status"}
    assert row["symbol"] == "TSLA"

    result = services.instruments_load([row])

    assert result.unchanged == ["TSLA"]
    assert Instrument.objects.get(symbol="TSLA").status == "RESTRICTED"


def test_load_new_only_when_listed_ones_differ_then_they_are_left_as_they_are(demo: Any) -> None:
    services.instrument_set_status("TSLA", "RESTRICTED", actor=None, reason="test")
    rows = demo_rows() + [{"symbol": "ORCL", "name": "Oracle", "asset_class": "EQUITY", "currency": "USD",
                           "tick_size": "0.01", "lot_size": "1"}]  # fmt: skip

    result = services.instruments_load(rows, new_only=True)

    assert (result.listed, result.changed, len(result.unchanged)) == (["ORCL"], [], 16)
    assert Instrument.objects.get(symbol="TSLA").status == "RESTRICTED"


def _bad_tick(rows: list[dict[str, Any]]) -> None:
    rows[4]["tick_size"] = "0"


def _option_without_strike(rows: list[dict[str, Any]]) -> None:
    rows[10]["strike"] = None


def _nan_price(rows: list[dict[str, Any]]) -> None:
    rows[2]["initial_price"] = "NaN"


def _unknown_class(rows: list[dict[str, Any]]) -> None:
    rows[6]["asset_class"] = "BOND"


def _future_without_expiry(rows: list[dict[str, Any]]) -> None:
    rows[9]["expiry"] = ""


def _bad_symbol(rows: list[dict[str, Any]]) -> None:
    rows[15]["symbol"] = "eth usd"


def _bad_date(rows: list[dict[str, Any]]) -> None:
    rows[9]["expiry"] = "2027-02-30"


def _duplicate(rows: list[dict[str, Any]]) -> None:
    rows[13]["symbol"] = "EURUSD"


def _missing_name(rows: list[dict[str, Any]]) -> None:
    del rows[7]["name"]


@pytest.mark.parametrize(
    ("spoil", "row", "field"),
    [
        (_bad_tick, 5, "tick_size"),
        (_option_without_strike, 11, "strike"),
        (_nan_price, 3, "initial_price"),
        (_unknown_class, 7, "asset_class"),
        (_future_without_expiry, 10, "expiry"),
        (_bad_symbol, 16, "symbol"),
        (_bad_date, 10, "expiry"),
        (_duplicate, 14, "symbol"),
        (_missing_name, 8, "name"),
    ],
)
def test_load_when_one_row_is_bad_then_nothing_is_loaded_and_the_row_is_named(
    db: Any, spoil: Any, row: int, field: str
) -> None:
    rows = demo_rows()
    spoil(rows)

    with pytest.raises(InvalidInput) as raised:
        services.instruments_load(rows)

    assert raised.value.message.startswith(f"Row {row}: {field}:"), raised.value.message
    assert field in raised.value.fields
    assert not Instrument.objects.exists()
    assert not Event.objects.filter(event_type__startswith="INSTRUMENT_").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("multiplier", "10"), ("currency", "EUR"), ("asset_class", "CRYPTO"), ("strike", "155"), ("expiry", "2027-02-19")],
)
def test_load_when_a_fixed_for_life_field_changes_then_the_whole_file_is_refused(
    demo: Any, field: str, value: str
) -> None:
    rows = demo_rows()
    rows[0]["tick_size"] = "0.05"  # a valid change on an earlier row: not applied either
    rows[10][field] = value
    if field == "asset_class":
        rows[10].update(strike=None, option_right="")
    events = Event.objects.count()

    with pytest.raises(InvalidInput, match=rf"^Row 11: {field}: is fixed"):
        services.instruments_load(rows)

    assert Instrument.objects.get(symbol="AAPL").tick_size == Decimal("0.01")
    assert Event.objects.count() == events


def test_command_when_file_has_a_bad_row_then_nonzero_exit_with_row_and_nothing_loaded(tmp_path: Path) -> None:
    rows = demo_rows()
    rows[4]["tick_size"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows))

    with pytest.raises(CommandError, match=r"Row 5: tick_size: must be greater than 0\. Nothing was loaded\."):
        call_command("load_instruments", str(path))

    assert not Instrument.objects.exists()


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(services.FIELDS))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def test_command_when_csv_then_same_instruments_as_json(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "instruments.csv"
    _write_csv(path, demo_rows())

    call_command("load_instruments", str(path))
    assert "16 listed" in capsys.readouterr().out
    from_csv = list(Instrument.objects.order_by("symbol").values(*services.FIELDS))

    call_command("load_instruments")  # the JSON demo file: nothing to change
    assert "0 listed, 0 changed, 16 unchanged" in capsys.readouterr().out
    assert list(Instrument.objects.order_by("symbol").values(*services.FIELDS)) == from_csv


def test_command_when_csv_has_a_bad_row_then_refused_with_its_number(tmp_path: Path) -> None:
    rows = demo_rows()
    rows[10]["strike"] = None  # an option without a strike
    path = tmp_path / "bad.csv"
    _write_csv(path, rows)

    with pytest.raises(CommandError, match=r"Row 11: strike: is required for an option"):
        call_command("load_instruments", str(path))
    assert not Instrument.objects.exists()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("x.json", '{"symbol": "AAPL"}', "expected a JSON list"),
        ("x.json", "[{", "not valid JSON"),
        ("x.json", '[{"symbol": "A", "tick_size": NaN}]', "not valid JSON"),
        ("x.txt", "", "expected a .json or .csv file"),
        ("x.csv", "symbol,name\nAAPL,Apple,extra\n", "Row 1: more cells than the header"),
        ("x.csv", "symbol,name,colour\nAAPL,Apple,red\n", "Row 1: colour: is not an instrument field"),
    ],
)
def test_command_when_file_is_malformed_then_refused(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CommandError, match=message):
        call_command("load_instruments", str(path))
    assert not Instrument.objects.exists()


def test_load_when_an_option_names_an_unlisted_underlying_then_refused(db: Any) -> None:
    option = next(row for row in demo_rows() if row["asset_class"] == "OPTION")
    with pytest.raises(InvalidInput, match=r"^Row 1: underlying: AAPL is not a listed instrument"):
        services.instruments_load([option])


def test_load_when_instruments_change_then_the_terms_directory_reads_them_afresh(demo: Any) -> None:
    assert directory.terms("AAPL") is not None
    rows = demo_rows()
    rows[0]["volatility"] = "0.40"

    services.instruments_load(rows)

    terms = directory.terms("AAPL")
    assert terms is not None and Decimal(terms.volatility) == Decimal("0.40")


def test_set_status_when_restricted_then_changed_event_with_reason(demo: Any, risk_manager: Any) -> None:
    services.instrument_set_status("NVDA", "RESTRICTED", actor=risk_manager, reason="earnings")
    services.instrument_set_status("NVDA", "RESTRICTED", actor=risk_manager, reason="again")  # no change

    assert Instrument.objects.get(symbol="NVDA").status == "RESTRICTED"
    [event] = _events(EventType.INSTRUMENT_CHANGED)
    assert event.symbol == "NVDA" and event.actor_username == "risk1"
    assert event.payload == {"changes": {"status": ["ACTIVE", "RESTRICTED"]}, "reason": "earnings"}


@pytest.mark.parametrize(("symbol", "status", "reason"), [("NVDA", "CLOSED", "x"), ("NVDA", "HALTED", " ")])
def test_set_status_when_invalid_then_refused(demo: Any, symbol: str, status: str, reason: str) -> None:
    with pytest.raises(InvalidInput):
        services.instrument_set_status(symbol, status, actor=None, reason=reason)
    assert not _events(EventType.INSTRUMENT_CHANGED)
