"""Orders endpoints: thin views that validate, call a service or selector, and shape the answer."""

from __future__ import annotations

import logging
import uuid
from typing import Any, NoReturn

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import JWTAuthentication, unverified
from books import directory
from core.exceptions import NotFound
from core.permissions import has_perms
from core.schema import ERRORS
from core.throttling import LocalWindow, RemoteOutage, SlidingWindowUserThrottle
from market import directory as market_directory
from orders import internal, selectors, serializers, services, submission
from orders.models import Order
from risk import access

logger = logging.getLogger("itirp.orders")


class OrderSubmitThrottle(SlidingWindowUserThrottle):
    """Per-user submission rate (ORDER_THROTTLE_RATE). If Redis is down, the same window per process instead of
    none (core.throttling.LocalWindow); the outage is logged once, when it begins, and once when it ends."""

    scope = "orders"
    local = LocalWindow()
    outage = RemoteOutage("order throttle", logger)

    def allow_request(self, request: Any, view: Any) -> bool:
        if not self.outage.skip_remote():
            try:
                allowed = super().allow_request(request, view)
            except Exception as exc:  # noqa: BLE001 - any store failure: the local window takes over
                self.outage.failed(exc)
            else:
                self.outage.succeeded()
                return allowed
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self._wait = self.local.hit(key, duration=self.duration, limit=self.num_requests)
        return self._wait == 0

    def wait(self) -> float | None:
        return getattr(self, "_wait", None) if self.outage.down else super().wait()


# OrderSubmitOut's timestamp field, once: building a serializer's fields for it deep-copied all eight of them,
# the violations' nested serializer too, on every submission. A field's representation keeps no state.
_TIMESTAMP = serializers.OrderSubmitOut._declared_fields["timestamp"]


class OrdersApi(APIView):
    def get_authenticators(self) -> list[Any]:
        # Called with the Django request set (View.setup), before DRF's own request exists; without one when the
        # OpenAPI schema is generated (drf-spectacular's mock requests), where the POST's scheme is JWT's anyway.
        if getattr(self.request, "method", None) == "POST":
            return [JWTAuthentication(put_off_for=("orders.submit_order",))]
        return super().get_authenticators()

    def get_permissions(self) -> list[Any]:
        perm = "orders.submit_order" if self.request.method == "POST" else "orders.view_order"
        return [has_perms(perm)()]

    def get_throttles(self) -> list[Any]:
        return [OrderSubmitThrottle()] if self.request.method == "POST" else []

    def _authenticate_by_query(self, request: Any) -> None:
        """Authentication and permission as for any request (the POST's puts the query off): a
        401 or 403 raised here is the answer the query would have given at the request's start."""
        request.user = AnonymousUser()  # until the query lets the user in: no reading answers for the user
        authenticated = JWTAuthentication().authenticate(request)
        if authenticated is None:  # the header was there a moment ago
            raise exceptions.NotAuthenticated()
        request.user, request.auth = authenticated
        self.check_permissions(request)

    def handle_exception(self, exc: Exception) -> Any:
        # A submission refused (bad input, an unknown book, a duplicate) by a user let in on this process's
        # reading: the query first, so that a user deactivated meanwhile is answered 401, as before.
        if unverified(getattr(self.request, "_user", None)) is not None:
            try:
                self._authenticate_by_query(self.request)
            except Exception as refused:  # noqa: BLE001 - the query's 401 or 403 is the answer
                exc = refused
        return super().handle_exception(exc)

    def throttled(self, request: Any, wait: float) -> NoReturn:
        # Only a refused submission comes here (the throttle is on POST only): the attempt joins the trail, by a
        # user whose reading is checked first (a user deactivated meanwhile is answered 401, as before).
        if unverified(request.user) is not None:
            self._authenticate_by_query(request)
        try:
            body = request.data
        except Exception:  # noqa: BLE001 - an unreadable body is refused all the same, with no fields
            body = {}
        submission.refused_throttled_record(user=request.user, body=body, wait=wait)
        super().throttled(request, wait)

    @extend_schema(
        request=serializers.OrderIn, responses={200: serializers.OrderSubmitOut, **ERRORS(403, 409)}, tags=["orders"]
    )
    def post(self, request: Any) -> Response:
        data = serializers.OrderIn(data=request.data)
        data.is_valid(raise_exception=True)
        order_request = submission.OrderRequest(**data.validated_data)
        correlation_id = getattr(request, "correlation_id", None)
        try:
            order, decision = submission.order_submit(
                user=request.user, request=order_request, correlation_id=correlation_id
            )
        except submission.CredentialsChanged:
            # The user, the token's revocation, its session or the user's permissions read under the risk lock
            # differ from this process's last reading: authenticated and permitted again, then decided.
            self._authenticate_by_query(request)
            order, decision = submission.order_submit(
                user=request.user, request=order_request, correlation_id=correlation_id
            )
        return Response(
            {
                "order_id": str(order.pk),
                "status": order.status,
                "correlation_id": str(order.correlation_id),
                "timestamp": _TIMESTAMP.to_representation(order.created_at),
                "message": decision.message,
                "client_order_id": order.client_order_id,
                "book": directory.by_id(order.book_id).code,
                "violations": submission.breaches(decision),
            }
        )

    @extend_schema(
        operation_id="orders_list",
        parameters=[
            serializers.PageIn,
            *(
                OpenApiParameter(kind, OpenApiTypes.STR, description=f"only one {kind}'s orders")
                for kind in ("book", "desk", "trader")
            ),
        ],
        responses={200: serializers.OrderListOut, **ERRORS()},
        tags=["orders"],
    )
    def get(self, request: Any) -> Response:
        params = serializers.PageIn(data=request.query_params)
        params.is_valid(raise_exception=True)
        # ?symbol= is v1's filter (PageIn), kept as it was; the scope filters are the others
        scopes = access.filter_scopes(request.query_params, ("book", "desk", "trader"))
        for scope in scopes:
            if not access.can_view_figures(request.user, scope):
                raise PermissionDenied(f"You may not view the orders of {scope}.")
        page, total = selectors.orders_page(user=request.user, scopes=scopes, **params.validated_data)
        return Response({"orders": serializers.OrderSummaryOut(page, many=True).data, "total": total})


def _order_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"Order {raw[:64]} not found") from None


class OrderDetailApi(APIView):
    def get_permissions(self) -> list[Any]:
        perm = "orders.submit_order" if self.request.method == "PATCH" else "orders.view_order"
        return [has_perms(perm)()]

    @extend_schema(responses={200: serializers.OrderOut, **ERRORS(404)}, tags=["orders"])
    def get(self, request: Any, order_id: str) -> Response:
        order = selectors.order_get_visible(user=request.user, order_id=_order_id(order_id))
        return Response(serializers.OrderOut(order).data)

    @extend_schema(
        request=serializers.AmendIn,
        responses={200: serializers.AmendOut, **ERRORS(404, 409)},
        tags=["orders"],
        description="Amend an open order: `quantity` is the new total (leaves = quantity - filled), `price` the new "
        "limit. Every pre-trade check runs again; a refused amend leaves the order as it was and answers "
        "amend_status REJECTED with the violations. 409 once the order is filled, cancelled, expired or at a "
        "venue call.",
    )
    def patch(self, request: Any, order_id: str) -> Response:
        order: Order = selectors.order_get_visible(user=request.user, order_id=_order_id(order_id))
        if order.user_id != request.user.pk:
            raise NotFound(f"Order {order_id} not found")  # amend only your own orders
        data = serializers.AmendIn(data=request.data)
        data.is_valid(raise_exception=True)
        order, decision = services.order_amend(actor=request.user, order_id=order.pk, **data.validated_data)
        answer = dict(serializers.OrderOut(order).data)
        answer.update(
            {
                "message": decision.message,
                "amend_status": "AMENDED" if decision.approved else "REJECTED",
                "violations": submission.breaches(decision),
            }
        )
        return Response(answer)


class OrderCancelApi(APIView):
    permission_classes = [has_perms("orders.submit_order")]

    @extend_schema(
        request=serializers.CancelIn, responses={200: serializers.OrderOut, **ERRORS(404, 409)}, tags=["orders"]
    )
    def post(self, request: Any, order_id: str) -> Response:
        order: Order = selectors.order_get_visible(user=request.user, order_id=_order_id(order_id))
        if order.user_id != request.user.pk and not request.user.has_perm("orders.cancel_any_order"):
            raise NotFound(f"Order {order_id} not found")
        data = serializers.CancelIn(data=request.data or {})
        data.is_valid(raise_exception=True)
        order = services.order_cancel(actor=request.user, order_id=order.pk, reason=data.validated_data["reason"])
        return Response(serializers.OrderOut(order).data)


class VenuesApi(APIView):
    permission_classes = [has_perms("orders.view_order")]

    @extend_schema(responses={200: serializers.VenuesOut, **ERRORS()}, tags=["venues"])
    def get(self, request: Any) -> Response:
        return Response({"venues": selectors.venues()})


def _symbol(raw: str) -> str:
    symbol = raw.upper()
    if not serializers.SYMBOL_RE.fullmatch(symbol) or market_directory.terms(symbol) is None:
        raise NotFound(f"Unknown instrument {raw[:20]!r}")
    return symbol


class InternalBookApi(APIView):
    permission_classes = [has_perms("orders.view_order")]

    @extend_schema(
        parameters=[serializers.DepthIn], responses={200: serializers.InternalBookOut, **ERRORS(404)}, tags=["venues"]
    )
    def get(self, request: Any, symbol: str) -> Response:
        params = serializers.DepthIn(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(
            serializers.InternalBookOut(internal.depth(_symbol(symbol), params.validated_data["depth"])).data
        )


class InternalTradesApi(APIView):
    permission_classes = [has_perms("orders.view_order")]

    @extend_schema(responses={200: serializers.TradesOut, **ERRORS(404)}, tags=["venues"])
    def get(self, request: Any, symbol: str) -> Response:
        code = _symbol(symbol)
        return Response(serializers.TradesOut({"symbol": code, "trades": internal.trades(code)}).data)
