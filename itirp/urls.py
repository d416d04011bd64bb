"""Root URLs: the API under /api/v1/, its schema and docs, and the admin back office."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import metrics
from itirp import views

# Orders first: a path is matched include by include, and each include that fails builds the list of what it
# tried; POST /orders, the busiest route by far, is then resolved by its include's first pattern.
api_v1 = [
    path("", include("orders.urls")),
    path("", include("accounts.urls")),
    path("", include("risk.urls")),
    path("", include("analytics.urls")),
    path("", include("books.urls")),
    path("", include("market.urls")),
    path("", include("audit.urls")),
    path("", include("approvals.urls")),
    path("", include("alerts.urls")),
    re_path(r"^health/?$", views.HealthApi.as_view(), name="health"),
    re_path(r"^metrics/?$", views.MetricsApi.as_view(), name="system-metrics"),
]

# The back office (templates/admin): ITIRP-branded; risk, compliance and admin roles sign in (is_staff).
admin.site.site_header = "ITIRP back office"
admin.site.site_title = "ITIRP back office"
admin.site.index_title = "Control panel"

urlpatterns = [
    path("", views.RootApi.as_view(), name="root"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^metrics/?$", metrics.metrics_view, name="prometheus-metrics"),  # Prometheus text, not the API's JSON
    # The header's "change password" link goes to the audited form (accounts/admin.py), never Django's own.
    path("admin/password_change/", views.own_password_change, name="own-password-change"),
    path("admin/", admin.site.urls),
]
