"""deploy/postgres/init.sql + grants.sql, as docker-compose applies them, on a scratch database of the real
server: migrations run as the owner role; the application role may insert events and seal them, but cannot
UPDATE, DELETE or TRUNCATE the event store, nor switch triggers off."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SQL = ROOT / "deploy" / "postgres"


def _server() -> dict[str, str]:
    db = settings.DATABASES["default"]
    return {
        "host": db.get("HOST") or "127.0.0.1",
        "port": str(db.get("PORT") or 5432),
        "user": db.get("USER") or "postgres",
    }


@pytest.fixture
def scratch() -> Iterator[dict[str, str]]:
    """A database and two roles named for this run only; dropped afterwards."""
    suffix = f"{os.getpid()}_h6"
    names = {"db": f"itirp_roles_{suffix}", "owner": f"itirp_owner_{suffix}", "app": f"itirp_app_{suffix}"}
    server = _server()
    admin = psycopg.connect(dbname="postgres", autocommit=True, **server)
    admin.execute(f'CREATE DATABASE "{names["db"]}"')
    try:
        yield {**names, **server}
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{names["db"]}" WITH (FORCE)')
        for role in (names["app"], names["owner"]):
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


def _sql(path: Path, names: dict[str, str]) -> str:
    return path.read_text().replace("itirp_owner", names["owner"]).replace("itirp_app", names["app"])


def _manage(names: dict[str, str], role: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgres://{names[role]}@{names['host']}:{names['port']}/{names['db']}"
    env["AUDIT_SEAL_SETTLE_SECONDS"] = "0"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def test_application_role_cannot_rewrite_the_event_store(scratch: dict[str, str]) -> None:
    server = {k: scratch[k] for k in ("host", "port")}
    with psycopg.connect(dbname=scratch["db"], user=scratch["user"], autocommit=True, **server) as boot:
        boot.execute(_sql(SQL / "init.sql", scratch))
    migrated = _manage(scratch, "owner", "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    with psycopg.connect(dbname=scratch["db"], user=scratch["user"], autocommit=True, **server) as boot:
        boot.execute(_sql(SQL / "grants.sql", scratch))

    with psycopg.connect(dbname=scratch["db"], user=scratch["app"], autocommit=True, **server) as app:
        app.execute(
            "INSERT INTO audit_event (event_id, event_type, correlation_id, symbol, actor_username, timestamp, payload)"
            " VALUES (gen_random_uuid(), 'LOGIN_FAILED', gen_random_uuid(), '', '', now(), '{}')"
        )
        app.execute("UPDATE risk_riskstate SET kill_switch_reason = kill_switch_reason")  # ordinary tables: yes
        for statement in (
            "UPDATE audit_event SET payload = '{}'",
            "DELETE FROM audit_event",
            "TRUNCATE audit_event",
            "DELETE FROM audit_seal",
            "TRUNCATE audit_eventhash",
            "ALTER TABLE audit_event DISABLE TRIGGER ALL",
            "SET session_replication_role = replica",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
        assert app.execute("SELECT count(*) FROM audit_event").fetchone()[0] == 1

    sealed = _manage(scratch, "app", "verify_audit")  # the sealer and verifier work as the application role
    assert sealed.returncode == 0, sealed.stderr[-3000:]
    assert sealed.stdout.startswith("OK: 1 events in 1 seals verified")
