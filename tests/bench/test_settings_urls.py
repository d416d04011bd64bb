"""Benchmark URLs come from bench/ only through the bench's own settings (bench.settings, bench/urls.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import NoReverseMatch, reverse

import itirp.settings
from bench import settings as bench_settings
from bench.servers import settings_env


def test_project_urls_when_benchmark_variable_set_then_no_bench_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITIRP_BENCH_BASELINE", "1")
    with pytest.raises(NoReverseMatch):
        reverse("bench-baseline")
    assert "bench" not in Path(itirp.settings.BASE_DIR, "itirp", "urls.py").read_text()


def test_bench_settings_when_read_then_project_settings_with_bench_urls() -> None:
    assert bench_settings.ROOT_URLCONF == "bench.urls"
    assert bench_settings.INSTALLED_APPS == itirp.settings.INSTALLED_APPS
    assert bench_settings.MIDDLEWARE == itirp.settings.MIDDLEWARE


@pytest.mark.django_db
def test_bench_urls_when_routed_then_baselines_and_the_api_answer(client, settings) -> None:
    settings.ROOT_URLCONF = "bench.urls"
    assert reverse("bench-baseline") == "/api/v1/bench/baseline"
    assert reverse("bench-guarded") == "/api/v1/bench/guarded"
    body = {"symbol": "MSFT", "side": "BUY", "quantity": 1, "price": 10}
    answer = client.post("/api/v1/bench/baseline", body, content_type="application/json")
    assert (answer.status_code, answer.json()["status"]) == (200, "APPROVED")
    assert client.get("/api/v1/health").status_code in (200, 503)  # the project's own routes stay
    assert client.post("/api/v1/bench/guarded", body, content_type="application/json").status_code == 401


def test_settings_env_when_tree_has_or_lacks_bench_settings_then_new_or_old_hook(tmp_path: Path) -> None:
    assert settings_env(tmp_path) == {"DJANGO_SETTINGS_MODULE": "itirp.settings", "ITIRP_BENCH_BASELINE": "1"}
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "settings.py").write_text("")
    assert settings_env(tmp_path) == {"DJANGO_SETTINGS_MODULE": "bench.settings"}
