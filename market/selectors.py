"""Instrument read queries: the reference data with each instrument's latest price (its Mark), in one query."""

from __future__ import annotations

from django.db.models import OuterRef, Q, QuerySet, Subquery

from core.exceptions import InvalidInput, NotFound
from market.models import AssetClass, Instrument, Mark


def with_reference(queryset: QuerySet[Instrument]) -> QuerySet[Instrument]:
    """Each instrument with its latest price and time (reference_price, reference_time; None before any)."""
    # Marks are keyed by symbol, not a foreign key: two correlated subqueries keep the list one query.
    mark = Mark.objects.filter(symbol=OuterRef("symbol"))
    return queryset.annotate(
        reference_price=Subquery(mark.values("last")[:1]),
        reference_time=Subquery(mark.values("timestamp")[:1]),
    )


def instrument_list(*, asset_class: str | None = None, search: str | None = None) -> list[Instrument]:
    """Instruments by symbol, optionally of one asset class and matching `search` (symbol or name, any case)."""
    queryset = Instrument.objects.all()
    if asset_class:
        if asset_class.upper() not in AssetClass.values:
            raise InvalidInput(
                "Invalid asset class",
                fields={"asset_class": f"{asset_class!r} is not one of {', '.join(AssetClass.values)}."},
            )
        queryset = queryset.filter(asset_class=asset_class.upper())
    if search and search.strip():
        term = search.strip()
        queryset = queryset.filter(Q(symbol__icontains=term) | Q(name__icontains=term))
    return list(with_reference(queryset).order_by("symbol"))


def instrument_get(symbol: str) -> Instrument:
    """One instrument by symbol (symbols are capitals, so any case finds it); NotFound if unknown."""
    instrument = with_reference(Instrument.objects.filter(symbol=symbol.upper())).first()
    if instrument is None:
        raise NotFound(f"No instrument {symbol!r}")
    return instrument
