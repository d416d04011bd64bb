"""Browser fixtures: Debian's chromium driven by Playwright (never `playwright install`), screenshots in test-output/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The live server of these tests listens on 127.0.0.1 only, on a free port the OS picks.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="package", autouse=True)
def _allow_sync_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an event loop running in this thread while the browser lives; the tests'
    own ORM calls are still synchronous. Only for this package: the variable must not leak into other tests
    (their subprocesses, such as `check --deploy`, refuse it)."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(_allow_sync_orm_beside_playwright: None) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt")
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed (Debian package chromium)")
        pytest.skip("chromium is not installed (Debian package chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    OUTPUT.mkdir(exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = OUTPUT / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def admin_login() -> Callable[[Any, str, str], None]:
    def login(page: Any, username: str, password: str) -> None:
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")

    return login


@pytest.fixture(autouse=True)
def _purge_queue() -> Iterator[None]:
    """API orders approved here queue execution tasks on commit; no worker runs, so drop them afterwards
    (a later worker test must not receive tasks for orders of a database that was reset)."""
    yield
    from itirp.celery import app

    try:
        app.control.purge()
    except Exception:  # noqa: BLE001 - a broker that is down has nothing queued to drop
        pass


WIDTHS = (1280, 390)


def screenshots(page: Any, folder: Path, name: str) -> None:
    """The page at a desktop and a phone width, for a person to look at (folder/name-<width>.png)."""
    folder.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
