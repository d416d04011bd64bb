"""Approvals routes under /api/v1/ (a trailing slash is accepted too)."""

from django.urls import re_path

from approvals import apis

urlpatterns = [
    re_path(r"^approvals/?$", apis.ApprovalsApi.as_view(), name="approvals"),
    re_path(r"^approvals/(?P<change_id>[^/]+)/approve/?$", apis.ApproveApi.as_view(), name="approvals-approve"),
    re_path(r"^approvals/(?P<change_id>[^/]+)/reject/?$", apis.RejectApi.as_view(), name="approvals-reject"),
]
