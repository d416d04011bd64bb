"""Use-cases that write instruments: loading reference data (the command, the API and the back office alike)
and changing an instrument's status. Each change is an event in the transaction that makes it.

A load is all or nothing: every row is checked first (against the file and the instruments already listed),
and the first bad row is refused with its 1-based number and field, so a file with one typo loads nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connection, transaction

from audit.models import EventType
from audit.services import Actor, EventSpec, event_record, events_record
from core.exceptions import Conflict, InvalidInput, NotFound
from market import directory
from market.models import SYMBOL_PATTERN, AssetClass, Instrument, InstrumentStatus, OptionRight

# Every field a row may carry, in the order of the demo file and of a CSV header.
FIELDS = (
    "symbol",
    "name",
    "asset_class",
    "currency",
    "tick_size",
    "lot_size",
    "multiplier",
    "status",
    "staleness_seconds",
    "volatility",
    "initial_price",
    "expiry",
    "underlying",
    "strike",
    "option_right",
)
REQUIRED = ("symbol", "name", "asset_class", "currency", "tick_size", "lot_size")
# Positions and reservations were valued with these (market.models): a load may not change them.
FIXED_FOR_LIFE = ("symbol", "asset_class", "currency", "multiplier", "underlying", "strike", "expiry", "option_right")
DEFAULTS: dict[str, Any] = {
    "multiplier": Decimal(1),
    "status": InstrumentStatus.ACTIVE.value,
    "staleness_seconds": 60,
    "volatility": Decimal(0),
    "initial_price": None,
    "expiry": None,
    "underlying": "",
    "strike": None,
    "option_right": "",
}
# (integer digits, decimal places) each decimal field holds (market.models: PRICE, and volatility's 12/6).
DIGITS = {
    "tick_size": (20, 10),
    "lot_size": (20, 10),
    "multiplier": (20, 10),
    "initial_price": (20, 10),
    "strike": (20, 10),
    "volatility": (6, 6),
}
NAME_LENGTH = 120  # Instrument.name's max_length
_SYMBOL = re.compile(SYMBOL_PATTERN)
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class LoadResult:
    listed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _refuse(number: int, name: str, message: str) -> InvalidInput:
    return InvalidInput(f"Row {number}: {name}: {message}", code="invalid_instrument", fields={name: message})


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _decimal(number: int, name: str, value: Any, *, positive: bool) -> Decimal:
    if isinstance(value, bool):
        raise _refuse(number, name, "must be a number.")
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        raise _refuse(number, name, f"{value!r} is not a number.") from None
    if not parsed.is_finite():
        raise _refuse(number, name, "must be a finite number.")
    if parsed < 0 or (positive and parsed == 0):
        raise _refuse(number, name, "must be greater than 0." if positive else "must not be negative.")
    whole, places = DIGITS[name]
    exponent = int(parsed.normalize().as_tuple().exponent)
    if -exponent > places:
        raise _refuse(number, name, f"has more than {places} decimal places.")
    if parsed >= Decimal(10) ** whole:
        raise _refuse(number, name, "is too large.")
    return parsed


def _seconds(number: int, name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _refuse(number, name, "must be a whole number of seconds.")
    try:
        seconds = Decimal(str(value).strip())
    except InvalidOperation:
        raise _refuse(number, name, f"{value!r} is not a number.") from None
    if not seconds.is_finite() or seconds != seconds.to_integral_value() or not 0 < seconds < 2**31:
        raise _refuse(number, name, "must be a whole number of seconds greater than 0.")
    return int(seconds)


def _date(number: int, name: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise _refuse(number, name, "must be a date (YYYY-MM-DD), not a time.")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise _refuse(number, name, f"{value!r} is not a date (YYYY-MM-DD).") from None


def _choice(number: int, name: str, value: Any, choices: Iterable[str]) -> str:
    allowed = list(choices)
    text = str(value).strip()
    if text not in allowed:
        raise _refuse(number, name, f"{text!r} is not one of {', '.join(allowed)}.")
    return text


def _row_clean(number: int, row: Mapping[str, Any], current: Instrument | None) -> dict[str, Any]:
    """One row as the instrument's field values; a field the row leaves out keeps its current value (or the
    default for a new instrument), an empty cell is no value."""
    if not isinstance(row, Mapping):
        raise _refuse(number, "row", "must be an object of instrument fields.")
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise _refuse(number, unknown[0], "is not an instrument field.")
    for name in REQUIRED:
        if _blank(row.get(name)):
            raise _refuse(number, name, "is required.")
    values: dict[str, Any] = {}
    for name in FIELDS:
        if name not in row:
            values[name] = getattr(current, name) if current is not None else DEFAULTS[name]
            continue
        raw = row[name]
        if _blank(raw):  # an empty cell: no value (the default where the field must have one)
            values[name] = DEFAULTS[name]  # required fields were refused blank above
            continue
        if name in ("symbol", "underlying"):
            text = str(raw).strip()
            if not _SYMBOL.fullmatch(text):
                raise _refuse(number, name, f"{text!r} is not a symbol (1-20 capitals, digits, '.', '_', '/', '-').")
            values[name] = text
        elif name == "name":
            text = str(raw).strip()
            if len(text) > NAME_LENGTH:
                raise _refuse(number, name, "is longer than 120 characters.")
            values[name] = text
        elif name == "currency":
            text = str(raw).strip()
            if not _CURRENCY.fullmatch(text):
                raise _refuse(number, name, f"{text!r} is not an ISO 4217 code (three capitals).")
            values[name] = text
        elif name == "asset_class":
            values[name] = _choice(number, name, raw, AssetClass.values)
        elif name == "status":
            values[name] = _choice(number, name, raw, InstrumentStatus.values)
        elif name == "option_right":
            values[name] = _choice(number, name, raw, OptionRight.values)
        elif name == "expiry":
            values[name] = _date(number, name, raw)
        elif name == "staleness_seconds":
            values[name] = _seconds(number, name, raw)
        else:
            values[name] = _decimal(number, name, raw, positive=name != "volatility")
    _terms_check(number, values)
    return values


def _terms_check(number: int, values: dict[str, Any]) -> None:
    kind = values["asset_class"]
    if kind == AssetClass.OPTION:
        for name in ("underlying", "strike", "expiry", "option_right"):
            if _blank(values[name]):
                raise _refuse(number, name, "is required for an option.")
    else:
        for name in ("strike", "option_right"):
            if not _blank(values[name]):
                raise _refuse(number, name, "is for options only.")
    if kind == AssetClass.FUTURE and values["expiry"] is None:
        raise _refuse(number, "expiry", "is required for a future.")


def _differs(old: Any, new: Any) -> bool:
    return bool(old != new)  # Decimals compare by value: 148.0000000000 from the database equals 148.00


def _text(value: Any) -> Any:
    """A field's value as an event payload keeps it: exact decimals as text, dates in ISO form."""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def instrument_rows_clean(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every row checked and turned into field values, without writing (the back office's form uses it).
    Raises InvalidInput naming the first bad row (1-based) and its field."""
    return _rows_clean(rows, _existing(rows))


def _existing(rows: Sequence[Mapping[str, Any]], *, lock: bool = False) -> dict[str, Instrument]:
    symbols = {str(row.get("symbol", "")).strip() for row in rows if isinstance(row, Mapping)}
    queryset = Instrument.objects.filter(symbol__in=symbols).order_by("pk")
    if lock:
        queryset = queryset.select_for_update()
    return {instrument.symbol: instrument for instrument in queryset}


def _rows_clean(rows: Sequence[Mapping[str, Any]], existing: dict[str, Instrument]) -> list[dict[str, Any]]:
    cleaned: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        symbol = str(row.get("symbol", "")).strip() if isinstance(row, Mapping) else ""
        current = existing.get(symbol)
        values = _row_clean(number, row, current)
        if values["symbol"] in seen:
            raise _refuse(number, "symbol", f"{values['symbol']} is also on row {seen[values['symbol']]}.")
        seen[values["symbol"]] = number
        if current is not None:
            for name in FIXED_FOR_LIFE:
                if _differs(getattr(current, name), values[name]):
                    old, new = _text(getattr(current, name)), _text(values[name])
                    raise _refuse(number, name, f"is fixed for the instrument's life ({old!r}, not {new!r}).")
        cleaned.append(values)
    # An option is valued on its underlying: it must be listed, or be listed by the same load.
    listed = set(seen)
    for number, values in enumerate(cleaned, start=1):
        underlying = values["underlying"]
        if values["asset_class"] == AssetClass.OPTION and underlying not in listed:
            if not Instrument.objects.filter(symbol=underlying).exists():
                raise _refuse(number, "underlying", f"{underlying} is not a listed instrument.")
    return cleaned


def instruments_load(
    rows: Sequence[Mapping[str, Any]], *, actor: Actor | None = None, source: str = "", new_only: bool = False
) -> LoadResult:
    """List the new instruments of `rows` and apply the changes to the others, all or nothing: INSTRUMENT_LISTED
    per new instrument, INSTRUMENT_CHANGED (`changes: {field: [old, new]}`) per changed one; a row that
    changes nothing writes nothing. `new_only` lists the new ones and leaves the listed ones as they are (a
    start-up that lists the demo set must not undo what the back office changed since)."""
    result = LoadResult()
    try:
        with transaction.atomic():
            existing = _existing(rows, lock=True)
            specs: list[EventSpec] = []
            for values in _rows_clean(rows, existing):
                current = existing.get(values["symbol"])
                if current is None:
                    instrument = Instrument.objects.create(**values)
                    payload = {name: _text(values[name]) for name in FIELDS}
                    specs.append(_spec(EventType.INSTRUMENT_LISTED, instrument.symbol, payload, source))
                    result.listed.append(instrument.symbol)
                    continue
                changes = {
                    name: [_text(getattr(current, name)), _text(values[name])]
                    for name in FIELDS
                    if _differs(getattr(current, name), values[name])
                }
                if not changes or new_only:
                    result.unchanged.append(current.symbol)
                    continue
                for name in changes:
                    setattr(current, name, values[name])
                current.save(update_fields=[*changes, "updated_at"])
                specs.append(_spec(EventType.INSTRUMENT_CHANGED, current.symbol, {"changes": changes}, source))
                result.changed.append(current.symbol)
            if specs:
                events_record(specs=specs, actor=actor)
    except IntegrityError as exc:  # another load listed the same symbol meanwhile
        raise Conflict("The instruments changed while loading; nothing was loaded. Try again.") from exc
    if result.listed or result.changed:
        _forget()
    return result


def _spec(event_type: EventType, symbol: str, payload: dict[str, Any], source: str) -> EventSpec:
    if source:
        payload = {**payload, "source": source}
    return EventSpec(event_type=event_type, symbol=symbol, payload=payload)


def _forget() -> None:
    # This process reads the terms afresh now; inside a caller's transaction, again once it commits.
    directory.forget()
    if connection.in_atomic_block:
        transaction.on_commit(directory.forget)


def instrument_set_status(symbol: str, status: str, *, actor: Actor | None, reason: str) -> Instrument:
    """Make an instrument ACTIVE, HALTED or RESTRICTED (INSTRUMENT_CHANGED with the reason); setting the status
    it has already changes nothing."""
    if status not in InstrumentStatus.values:
        raise InvalidInput(
            "Invalid status", fields={"status": f"{status!r} is not one of {', '.join(InstrumentStatus.values)}."}
        )
    if not reason or not reason.strip():
        raise InvalidInput("Invalid status change", fields={"reason": "A reason is required."})
    with transaction.atomic():
        instrument = Instrument.objects.select_for_update().filter(symbol=symbol).first()
        if instrument is None:
            raise NotFound(f"No instrument {symbol!r}")
        if instrument.status == status:
            return instrument
        old, instrument.status = instrument.status, status
        instrument.save(update_fields=["status", "updated_at"])
        event_record(
            event_type=EventType.INSTRUMENT_CHANGED,
            actor=actor,
            symbol=instrument.symbol,
            payload={"changes": {"status": [old, status]}, "reason": reason.strip()},
        )
    _forget()
    return instrument
