"""Market data endpoints: push prices (an external feed), the latest quote, and price history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import InvalidInput, NotFound
from core.permissions import has_perms
from core.schema import ERRORS
from market import data_serializers as s
from market import directory, history, prices
from market.models import BarInterval, Instrument
from market.prices import Quote


class MarketDataPushApi(APIView):
    permission_classes = [has_perms("market.push_market_data")]

    @extend_schema(
        operation_id="market_data_push",
        request=s.PricesIn,
        responses={200: s.PushOut, **ERRORS()},
        tags=["market data"],
        description="All or nothing: a bad row is a 400 naming every bad row by index (`rows`), and nothing is "
        "stored. Unknown symbols are not errors: they come back in `rejected`.",
    )
    def post(self, request: Any) -> Response:
        now = timezone.now()
        rows = s.price_rows(request.data, now)
        source = f"api:{request.user.username}"[:32]
        accepted: list[Quote] = []
        rejected: list[dict[str, str]] = []
        for row in rows:
            if directory.terms(row.symbol) is None:
                rejected.append({"symbol": row.symbol, "detail": "Unknown instrument."})
                continue
            accepted.append(Quote(row.symbol, row.last, row.timestamp, source, row.bid, row.ask))
        if accepted:
            prices.record(accepted)
        return Response(s.PushOut({"accepted": len(accepted), "rejected": rejected}).data)


def _instrument(symbol: str) -> Mapping[str, Any]:
    found = Instrument.objects.filter(symbol=symbol.upper()).values("symbol", "staleness_seconds").first()
    if found is None:
        raise NotFound(f"Unknown instrument {symbol!r}.", code="unknown_instrument")
    return found


class QuoteApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="market_data_quote",
        responses={200: s.QuoteOut, **ERRORS(404)},
        tags=["market data"],
        description="An instrument that has no price yet answers nulls and `stale: true`.",
    )
    def get(self, request: Any, symbol: str) -> Response:
        instrument = _instrument(symbol)
        quote = prices.latest([instrument["symbol"]]).get(instrument["symbol"])
        body: dict[str, Any] = {
            "symbol": instrument["symbol"],
            "bid": None,
            "ask": None,
            "last": None,
            "timestamp": None,
            "source": None,
            "stale": prices.stale(quote, instrument["staleness_seconds"]),
        }
        if quote is not None:
            body.update(bid=quote.bid, ask=quote.ask, last=quote.last, timestamp=quote.timestamp, source=quote.source)
        return Response(s.QuoteOut(body).data)


DEFAULT_SINCE = {BarInterval.MINUTE: dt.timedelta(hours=24), BarInterval.DAY: dt.timedelta(days=500)}


class HistoryApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="market_data_history",
        parameters=[
            OpenApiParameter("since", str, description="ISO 8601 with offset; default 24 h (1m) or 500 days (1d) ago"),
            OpenApiParameter("interval", str, enum=BarInterval.values, description="1m (default) or 1d"),
        ],
        responses={200: s.HistoryOut, **ERRORS(404)},
        tags=["market data"],
        description=f"Bars oldest first, at most {history.MAX_BARS} per answer (`truncated` says more follow).",
    )
    def get(self, request: Any, symbol: str) -> Response:
        interval = request.query_params.get("interval", BarInterval.MINUTE)
        if interval not in BarInterval.values:
            raise InvalidInput("interval must be 1m or 1d.", code="invalid", fields={"interval": "1m or 1d"})
        raw_since = request.query_params.get("since")
        if raw_since:
            try:
                since = parse_datetime(raw_since.replace(" ", "+"))  # an unencoded '+' arrives as a space
            except ValueError:
                since = None
            if since is None or since.tzinfo is None:
                raise InvalidInput(
                    "since must be an ISO 8601 date and time with an offset.",
                    code="invalid",
                    fields={"since": "e.g. 2026-01-02T00:00:00Z"},
                )
        else:
            since = timezone.now() - DEFAULT_SINCE[BarInterval(interval)]
        instrument = _instrument(symbol)
        bars, truncated = history.bars(instrument["symbol"], interval=interval, since=since)
        body = {"symbol": instrument["symbol"], "interval": interval, "bars": bars, "truncated": truncated}
        return Response(s.HistoryOut(body).data)
