"""Instruments' valuation terms as a process needs them, without a query per use.

Symbol, asset class, currency, multiplier and option terms are fixed for life; the volatility may be edited,
so a process reads the table again after TERMS_TTL seconds, or at once when asked for a symbol it does not
know. Status, tick and lot sizes are never taken from here: the order path reads them under the risk lock.
"""

from __future__ import annotations

import threading
import time

from market.models import Instrument
from market.valuation import Terms

TERMS_TTL = 5.0
_lock = threading.Lock()
_terms: dict[str, Terms] = {}
_loaded_at = 0.0


def _load() -> dict[str, Terms]:
    global _loaded_at
    rows = Instrument.objects.values_list(
        "symbol",
        "asset_class",
        "currency",
        "multiplier",
        "underlying",
        "strike",
        "expiry",
        "option_right",
        "volatility",
    )
    fresh = {row[0]: Terms(*row) for row in rows}
    with _lock:
        _terms.clear()
        _terms.update(fresh)
        _loaded_at = time.monotonic()
    return fresh


def all_terms() -> dict[str, Terms]:
    if not _terms or time.monotonic() - _loaded_at > TERMS_TTL:
        return _load()
    return _terms


def terms(symbol: str) -> Terms | None:
    found = all_terms().get(symbol)
    if found is None:
        found = _load().get(symbol)
    return found


def forget() -> None:
    """Drop what this process knows (tests that recreate the instruments between cases)."""
    global _loaded_at
    with _lock:
        _terms.clear()
        _loaded_at = 0.0
