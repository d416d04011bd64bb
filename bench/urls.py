"""The project's URLs plus the benchmark's two baselines (bench/baseline.py), for bench.settings only."""

from django.urls import include, path

from bench.baseline import BaselineApi, GuardedBaselineApi

urlpatterns = [
    path("api/v1/bench/baseline", BaselineApi.as_view(), name="bench-baseline"),
    path("api/v1/bench/guarded", GuardedBaselineApi.as_view(), name="bench-guarded"),
    path("", include("itirp.urls")),
]
