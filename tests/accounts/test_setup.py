"""Settings come from the environment only (and refuse an unsafe start); create_demo_users is safe to repeat."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import User
from tests.accounts.conftest import LOGIN, bearer, events

ROOT = Path(django_settings.BASE_DIR)
DEMO = {
    "trader1": ("trader123", "TRADER", False),
    "risk1": ("risk123", "RISK_MANAGER", False),
    "compliance1": ("compliance123", "COMPLIANCE", False),
    "admin": ("admin123", "ADMIN", True),
    "trader2": ("trader234", "TRADER", False),
    "risk2": ("risk234", "RISK_MANAGER", False),
}


PRODUCTION_DB = "postgres://itirp@db.invalid:5432/itirp"  # never connected to: settings only


def _environment(tmp_path: Path, **env: str) -> dict[str, str]:
    """The suite's environment without the ITIRP variables under test, plus the given ones."""
    unset = {"SECRET_KEY", "DEBUG", "JWT_SIGNING_KEY", "DATABASE_URL", "REDIS_URL", "LOG_FORMAT"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    clean.update(DJANGO_SETTINGS_MODULE="itirp.settings", ITIRP_VAR_DIR=str(tmp_path / "var"), **env)
    if not clean.get("DATABASE_URL"):  # "" = the embedded demo database: unset, as `make run` leaves it
        clean.pop("DATABASE_URL", None)
    return clean


def _settings_process(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with exactly the given ITIRP variables."""
    env.setdefault("DATABASE_URL", PRODUCTION_DB)
    clean = _environment(tmp_path, **env)
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); from django.conf import settings; {code}"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- settings -----------------------------------------------------------------------------------------------


def test_production_without_secret_key_refuses_to_start(tmp_path: Path) -> None:
    result = _settings_process(tmp_path, "print('started')", DEBUG="0")

    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr
    assert "With DEBUG off ITIRP refuses to start" in result.stderr


def test_debug_defaults_to_off(tmp_path: Path) -> None:
    result = _settings_process(tmp_path, "print('started')")

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_with_a_secret_key_starts_and_signs_tokens_with_it(tmp_path: Path) -> None:
    key = "k" * 64
    result = _settings_process(
        tmp_path,
        "print(settings.DEBUG, settings.SIMPLE_JWT['SIGNING_KEY'] == settings.SECRET_KEY)",
        DEBUG="0",
        SECRET_KEY=key,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


def test_demo_mode_makes_a_random_key_once_per_checkout(tmp_path: Path) -> None:
    first = _settings_process(tmp_path, "print(settings.SECRET_KEY)", DEBUG="1")
    second = _settings_process(tmp_path, "print(settings.SECRET_KEY)", DEBUG="1")

    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "var" / "secret_key"
    assert first.stdout.strip() == second.stdout.strip() == key_file.read_text().strip()
    assert len(first.stdout.strip()) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600
    other = _settings_process(tmp_path / "elsewhere", "print(settings.SECRET_KEY)", DEBUG="1")
    assert other.stdout.strip() != first.stdout.strip()


def test_embedded_demo_database_uses_the_demo_key_without_debug(tmp_path: Path) -> None:
    # The second shell next to `make run`: nothing set at all (no DEBUG, no DATABASE_URL, no SECRET_KEY).
    demo = _settings_process(tmp_path, "print(settings.DEBUG, settings.SECRET_KEY)", DATABASE_URL="")
    with_debug = _settings_process(tmp_path, "print(settings.SECRET_KEY)", DEBUG="1", DATABASE_URL="")

    assert demo.returncode == 0, demo.stderr
    debug, key = demo.stdout.split()
    assert debug == "False"
    assert key == with_debug.stdout.strip() == (tmp_path / "var" / "secret_key").read_text().strip()


@pytest.mark.slow
def test_documented_demo_commands_work_in_a_second_shell_next_to_make_run(tmp_path: Path) -> None:
    """README: after `make run` (DEBUG=1, the embedded database), `python manage.py verify_audit`,
    `replay_events --verify` and `export_audit` run with nothing set."""
    run_env = _environment(tmp_path, DEBUG="1")
    shell_env = _environment(tmp_path)

    def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )

    for args in (("migrate", "--noinput"), ("create_demo_users",)):
        made = manage(run_env, *args)
        assert made.returncode == 0, made.stderr

    verified = manage(shell_env, "verify_audit")
    replayed = manage(shell_env, "replay_events", "--verify")
    exported = manage(
        shell_env,
        "export_audit",
        "--since",
        "2000-01-01",
        "--until",
        "2100-01-01",
        "--out",
        str(tmp_path / "audit.jsonl"),
    )

    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("OK")
    assert replayed.returncode == 0, replayed.stderr
    assert exported.returncode == 0, exported.stderr
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) >= 4  # the four USER_CREATED events at least
    assert not any("SECRET_KEY is not set" in r.stderr for r in (verified, replayed, exported))


def test_auth_settings_come_from_the_environment(tmp_path: Path) -> None:
    result = _settings_process(
        tmp_path,
        "print(settings.AXES_FAILURE_LIMIT, int(settings.AXES_COOLOFF_TIME.total_seconds()),"
        " int(settings.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME'].total_seconds()),"
        " settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['login'], settings.REST_FRAMEWORK['NUM_PROXIES'],"
        " settings.PASSWORD_HASHERS[0])",
        DEBUG="0",
        SECRET_KEY="s" * 64,
        LOGIN_FAILURE_LIMIT="3",
        LOGIN_LOCKOUT_SECONDS="120",
        ACCESS_TOKEN_LIFETIME_SECONDS="600",
        LOGIN_THROTTLE_RATE="10/min",
        NUM_PROXIES="1",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "3",
        "120",
        "600",
        "10/min",
        "1",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
    ]


# --- system checks (itirp/checks.py) ------------------------------------------------------------------------


def _itirp_errors() -> list[str]:
    from django.core.checks import run_checks

    return [message.id for message in run_checks(tags=["itirp"]) if message.is_serious()]


def test_system_checks_when_settings_agree_then_no_error() -> None:
    assert _itirp_errors() == []


@pytest.mark.parametrize(("visibility", "errors"), [(69, ["itirp.E001"]), (70, [])])
def test_system_check_when_visibility_timeout_not_above_the_longest_task_then_error(
    settings: Any, visibility: int, errors: list[str]
) -> None:
    # venue timeout 5 + longest backoff 4 + task limit 60 = 69 seconds.
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": visibility}
    settings.VENUE_TIMEOUT_SECONDS, settings.EXECUTION_RETRY_BACKOFF_SECONDS = 5.0, [1.0, 2.0, 4.0]
    settings.CELERY_TASK_TIME_LIMIT = 60

    assert _itirp_errors() == errors


def test_system_check_when_filesystem_broker_then_no_visibility_timeout_to_check(settings: Any) -> None:
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": "/tmp"}
    settings.CELERY_TASK_TIME_LIMIT = 10_000

    assert _itirp_errors() == []


def test_system_check_when_a_metrics_network_is_not_a_network_then_error(settings: Any) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "not-a-network", "127.0.0.1"]

    assert _itirp_errors() == ["itirp.E002"]


def test_manage_py_refuses_to_run_with_a_failing_system_check(tmp_path: Path) -> None:
    env = _environment(
        tmp_path,
        SECRET_KEY="s" * 64,
        DATABASE_URL=PRODUCTION_DB,
        REDIS_URL="redis://127.0.0.1:1/0",
        CELERY_VISIBILITY_TIMEOUT="30",
        METRICS_ALLOWED_NETWORKS="10.0.0.0/8,nope",
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 1
    assert "itirp.E001" in result.stderr and "CELERY_VISIBILITY_TIMEOUT must exceed" in result.stderr
    assert "itirp.E002" in result.stderr and "'nope' is not a network" in result.stderr


# --- create_demo_users ---------------------------------------------------------------------------------------


def _run(*args: str) -> str:
    out = StringIO()
    call_command("create_demo_users", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_demo_users_creates_the_demo_users(settings: Any) -> None:
    settings.DEBUG = True

    output = _run()

    for username, (password, role, superuser) in DEMO.items():
        user = User.objects.get(username=username)
        assert user.role == role
        assert user.is_superuser is superuser
        assert user.check_password(password)
        assert user.password.startswith("argon2")
        assert [g.name for g in user.groups.all()] == [role]
        assert f"created {username}" in output
    assert events("USER_CREATED") == len(DEMO)


@pytest.mark.django_db
def test_create_demo_users_is_idempotent_and_repairs_drift(settings: Any) -> None:
    settings.DEBUG = True
    _run()
    trader = User.objects.get(username="trader1")
    trader.set_password("changed-by-someone")
    trader.save()
    from accounts import services

    services.user_set_role(actor=None, user=trader, role="COMPLIANCE")

    output = _run()
    _run()

    # Nothing duplicated (django-guardian keeps its own AnonymousUser row, which is not ours to count).
    assert User.objects.filter(username__in=DEMO).count() == len(DEMO)
    assert User.objects.exclude(username="AnonymousUser").count() == len(DEMO)
    assert "exists  trader1" in output
    assert events("USER_CREATED") == len(DEMO)
    trader.refresh_from_db()
    assert trader.role == "TRADER" and trader.check_password("trader123")
    assert [g.name for g in trader.groups.all()] == ["TRADER"]


@pytest.mark.django_db
def test_demo_users_log_in_through_the_api(settings: Any) -> None:
    settings.DEBUG = True
    _run()

    for username, (password, role, _) in DEMO.items():
        response = APIClient().post(LOGIN, {"username": username, "password": password}, format="json")
        assert response.status_code == 200, username
        audit = bearer(response.json()["access_token"]).get("/api/v1/audit/events")
        assert audit.status_code == (200 if role in {"COMPLIANCE", "ADMIN"} else 403), username


@pytest.mark.django_db
def test_create_demo_users_refuses_with_debug_off(settings: Any) -> None:
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG is off.*--force"):
        _run()

    assert not User.objects.filter(username__in=DEMO).exists()
    assert events("USER_CREATED") == 0


@pytest.mark.django_db
def test_create_demo_users_with_force_creates_them_with_debug_off(settings: Any) -> None:
    settings.DEBUG = False

    _run("--force")

    assert User.objects.filter(username__in=DEMO).count() == len(DEMO)


def test_the_command_exits_non_zero_with_debug_off(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    env.update(DEBUG="0", SECRET_KEY="s" * 64, ITIRP_VAR_DIR=str(tmp_path))
    # No database is touched before the refusal; point at one that cannot exist to prove it.
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'never-created.sqlite3'}"

    result = subprocess.run(
        [sys.executable, "manage.py", "create_demo_users", "--skip-checks"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert "DEBUG is off" in result.stderr
    assert not (tmp_path / "never-created.sqlite3").exists()
