"""Order routes under /api/v1/ (a trailing slash is accepted too)."""

from django.urls import re_path

from orders import apis

# A symbol as market/urls.py spells it (a symbol may hold '/', e.g. an FX pair, never at the end).
SYMBOL = r"(?P<symbol>[A-Za-z0-9][A-Za-z0-9._/-]{0,19}?)"

urlpatterns = [
    re_path(r"^orders/?$", apis.OrdersApi.as_view(), name="orders"),
    re_path(r"^orders/(?P<order_id>[^/]+)/?$", apis.OrderDetailApi.as_view(), name="order-detail"),
    re_path(r"^orders/(?P<order_id>[^/]+)/cancel/?$", apis.OrderCancelApi.as_view(), name="order-cancel"),
    re_path(r"^venues/?$", apis.VenuesApi.as_view(), name="venues"),
    re_path(rf"^venues/INTERNAL/book/{SYMBOL}/?$", apis.InternalBookApi.as_view(), name="internal-book"),
    re_path(rf"^venues/INTERNAL/trades/{SYMBOL}/?$", apis.InternalTradesApi.as_view(), name="internal-trades"),
]
