from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from litestar import Litestar
from litestar.testing import AsyncTestClient
from psycopg import sql

from app.cli.main import main
from app.cli.migrate import alembic_config, upgrade
from app.settings import APP_ROLE
from tests import infra

Client = AsyncTestClient[Litestar]


async def test_ready_checks_database_and_redis(client: Client) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok"}
    assert response.json()["down"] == []


async def test_live_metrics_and_schema(client: Client) -> None:
    assert (await client.get("/health/live")).status_code == 200
    await client.get("/health/live")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "reckon_http_requests_total" in metrics.text
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/signup" in schema.json()["paths"]


async def test_request_id_is_echoed(client: Client) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


# The application role's password (migration 0014, `reckon migrate`) ---------------------------


def _role_password(admin: str) -> str | None:
    with psycopg.connect(admin, autocommit=True) as connection:
        row = connection.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (APP_ROLE,)
        ).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


def _verifies(verifier: str | None, password: str) -> bool:
    """Check a SCRAM-SHA-256 verifier the way the server does at login (RFC 5802/7677)."""
    assert verifier is not None and verifier.startswith("SCRAM-SHA-256$"), verifier
    iterations, salt, stored_key, server_key = re.split(r"[$:]", verifier)[1:]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return (
        base64.b64decode(stored_key) == hashlib.sha256(client_key).digest()
        and base64.b64decode(server_key) == hmac.new(salted, b"Server Key", "sha256").digest()
    )


@pytest.fixture
def scratch_database(base_urls: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """An empty database to migrate from scratch, and the admin conninfo; reckon_app is
    cluster-wide, so its password is put back as it was."""
    admin = infra.libpq(infra.with_database(base_urls[0], "postgres"))
    name = f"reckon_role_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    before = _role_password(admin)
    try:
        yield infra.with_database(base_urls[0], name), admin
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(before)
                )
            )
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrations_set_the_app_role_password_from_the_environment_and_migrate_rotates_it(
    scratch_database: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, admin = scratch_database
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"ALTER ROLE {APP_ROLE} PASSWORD NULL")
    monkeypatch.delenv("RECKON_APP_PASSWORD", raising=False)
    upgrade(url, "0014")
    assert _role_password(admin) is None, "unset, the migration must change nothing"

    # Quotes and a statement separator: the value must reach the role as a literal.
    first = "it's a \"pass\"word'; DROP ROLE reckon_app; --" + secrets.token_urlsafe(8)
    monkeypatch.setenv("RECKON_APP_PASSWORD", first)
    command.downgrade(alembic_config(url), "0013")
    upgrade(url, "0014")
    assert _verifies(_role_password(admin), first)

    second = secrets.token_urlsafe(24)
    monkeypatch.setenv("RECKON_APP_PASSWORD", second)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("RECKON_ENV", raising=False)
    assert main(["migrate"]) == 0
    verifier = _role_password(admin)
    assert _verifies(verifier, second)
    assert not _verifies(verifier, first)
