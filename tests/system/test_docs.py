"""The API docs work on a closed network: Swagger UI's assets are served by ITIRP itself, not a CDN."""

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_docs_page_when_served_then_every_asset_is_local(api):
    response = api.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    for asset in assets:
        assert finders.find(asset), f"static asset {asset} is not shipped"


def test_schema_when_requested_then_openapi_document_lists_the_contract(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/v1/orders", "/api/v1/auth/login", "/api/v1/risk/kill-switch", "/api/v1/audit/events"]:
        assert any(p.rstrip("/") == path for p in paths), path


def test_root_when_anonymous_then_names_the_system_and_links(api):
    body = api.get("/").json()
    assert body["version"] and body["docs"] == "/api/docs/"
    assert body["endpoints"]["orders"] == "/api/v1/orders"


def test_settings_when_jwt_signing_key_is_empty_then_the_secret_key_signs(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "JWT_SIGNING_KEY": "", "SECRET_KEY": "k" * 60, "DEBUG": "0", "ITIRP_VAR_DIR": str(tmp_path)}
    code = "from django.conf import settings; print(settings.SIMPLE_JWT['SIGNING_KEY'] == 'k' * 60)"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='itirp.settings'; django.setup(); {code}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "True", out.stderr[-2000:]
