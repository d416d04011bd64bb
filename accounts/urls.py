"""Auth routes under /api/v1/ (a trailing slash is accepted too)."""

from django.urls import re_path

from accounts import apis

urlpatterns = [
    re_path(r"^auth/login/?$", apis.LoginApi.as_view(), name="auth-login"),
    re_path(r"^auth/refresh/?$", apis.RefreshApi.as_view(), name="auth-refresh"),
    re_path(r"^auth/logout/?$", apis.LogoutApi.as_view(), name="auth-logout"),
]
