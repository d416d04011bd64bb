"""Audit routes under /api/v1/ (a trailing slash is accepted too)."""

from django.urls import re_path

from audit import apis

urlpatterns = [
    re_path(r"^audit/events/?$", apis.EventsApi.as_view(), name="audit-events"),
    re_path(r"^audit/report/?$", apis.ReportApi.as_view(), name="audit-report"),
    re_path(
        r"^audit/correlation/(?P<correlation_id>[^/]+)/?$", apis.CorrelationTrailApi.as_view(), name="audit-correlation"
    ),
    re_path(r"^audit/order/(?P<order_id>[^/]+)/trail/?$", apis.OrderTrailApi.as_view(), name="audit-order-trail"),
]
