"""Pytest plugin loaded before Django (-p tests.bootstrap): points the suite at PostgreSQL and Redis.

Defaults: postgres@127.0.0.1:5432 and redis 127.0.0.1:6379/1 (DATABASE_URL / REDIS_URL override).
Where a server is unreachable the tests marked for it are skipped with the reason shown; with
REQUIRE_SERVICES=1 an unreachable server fails the run instead.
"""

from __future__ import annotations

import os
import socket
import tempfile
from urllib.parse import urlparse

import pytest

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/itirp")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-" + "x" * 20)
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ITIRP_VAR_DIR", tempfile.mkdtemp(prefix="itirp-test-"))
os.environ.setdefault("LOG_LEVEL", "WARNING")
# The firm's default price collar is off in the suite: most tests are about the seed's limits and trade at
# whatever price suits their arithmetic. The collar's tests set it (tests/market, tests/risk/test_at_market.py).
os.environ.setdefault("DEFAULT_PRICE_COLLAR_PCT", "0")
# The suite's clients and servers speak plain HTTP on loopback; production redirects to HTTPS (settings.py).
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
# `make test-sqlite`: the embedded database of `make run` (SQLite, no Redis), on purpose. The tests that need
# PostgreSQL or Redis are deselected, not skipped: this run is about the demo's path, the full suite covers them.
SQLITE_RUN = os.environ.get("ITIRP_TEST_DATABASE") == "sqlite"
if SQLITE_RUN:
    os.environ["DATABASE_URL"] = f"sqlite:///{os.environ['ITIRP_VAR_DIR']}/test.sqlite3"
    os.environ["REDIS_URL"] = ""


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


POSTGRES_UP = os.environ["DATABASE_URL"].startswith("postgres") and _reachable(os.environ["DATABASE_URL"], 5432)
REDIS_UP = bool(os.environ["REDIS_URL"]) and _reachable(os.environ["REDIS_URL"], 6379)
PROBLEMS = []
if not POSTGRES_UP and not SQLITE_RUN:
    PROBLEMS.append(f"PostgreSQL unreachable at {os.environ['DATABASE_URL']}")
    os.environ["DATABASE_URL"] = f"sqlite:///{os.environ['ITIRP_VAR_DIR']}/test.sqlite3"
if not REDIS_UP and not SQLITE_RUN:
    PROBLEMS.append(f"Redis unreachable at {os.environ['REDIS_URL']}")
    os.environ["REDIS_URL"] = ""


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE and PROBLEMS:
        raise pytest.UsageError("REQUIRE_SERVICES=1 but: " + "; ".join(PROBLEMS))
    config.addinivalue_line("markers", "postgres: needs a real PostgreSQL server")
    config.addinivalue_line("markers", "redis: needs a real Redis server")
    config.addinivalue_line("markers", "slow: slow (worker processes, browser, faults); deselect with -m 'not slow'")
    config.addinivalue_line("markers", "browser: drives a real Chromium")
    config.addinivalue_line(
        "markers", "empty_market: starts with no instrument listed and no price (tests of the market app itself)"
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"itirp services: postgres={'up' if POSTGRES_UP else 'DOWN'} redis={'up' if REDIS_UP else 'DOWN'}"
        f" require={'yes' if REQUIRE else 'no'}"
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SQLITE_RUN:
        kept = [item for item in items if not {"postgres", "redis", "slow"} & set(item.keywords)]
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
        return
    for item in items:
        if "postgres" in item.keywords and not POSTGRES_UP:
            item.add_marker(pytest.mark.skip(reason=f"needs PostgreSQL: {PROBLEMS[0]}"))
        if "redis" in item.keywords and not REDIS_UP:
            item.add_marker(pytest.mark.skip(reason="needs Redis: Redis unreachable"))
