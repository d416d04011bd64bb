"""Order routes under /api/v1/ (a trailing slash is accepted too)."""

from django.urls import re_path

from orders import apis

urlpatterns = [
    re_path(r"^orders/?$", apis.OrdersApi.as_view(), name="orders"),
    re_path(r"^orders/(?P<order_id>[^/]+)/?$", apis.OrderDetailApi.as_view(), name="order-detail"),
    re_path(r"^orders/(?P<order_id>[^/]+)/cancel/?$", apis.OrderCancelApi.as_view(), name="order-cancel"),
    re_path(r"^venues/?$", apis.VenuesApi.as_view(), name="venues"),
    re_path(r"^venues/INTERNAL/book/(?P<symbol>[^/]+)/?$", apis.InternalBookApi.as_view(), name="internal-book"),
    re_path(r"^venues/INTERNAL/trades/(?P<symbol>[^/]+)/?$", apis.InternalTradesApi.as_view(), name="internal-trades"),
]
