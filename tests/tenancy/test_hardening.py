"""Tenancy hardening, checked against the migrated schema: every tenant table has row-level
security enabled, forced and a policy; the application role can only append to the audit log;
every SECURITY DEFINER function is callable by the application role only; a superuser or
BYPASSRLS application role is refused."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cli.migrate import UnsafeAppRole, assert_role_is_restricted
from app.db import tenant_transaction
from tests.infra import libpq


async def test_every_tenant_table_has_rls_enabled_forced_and_a_policy(
    owner_engine: AsyncEngine,
) -> None:
    async with owner_engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                    "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies "
                    "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
                    "AND a.attname = 'tenant_id' AND NOT a.attisdropped "
                    "WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"
                )
            )
        ).all()
    assert len(rows) > 30
    unprotected = [r.relname for r in rows if not (r.relrowsecurity and r.relforcerowsecurity)]
    without_policy = [r.relname for r in rows if r.policies == 0]
    assert unprotected == [] and without_policy == []


async def test_security_definer_functions_are_for_the_app_role_only(
    owner_engine: AsyncEngine,
) -> None:
    async with owner_engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT p.oid::regprocedure::text AS name, "
                    "has_function_privilege('public', p.oid, 'EXECUTE') AS public, "
                    "has_function_privilege('reckon_app', p.oid, 'EXECUTE') AS app "
                    "FROM pg_proc p WHERE p.prosecdef "
                    "AND p.pronamespace = 'public'::regnamespace"
                )
            )
        ).all()
    assert len(rows) > 10
    assert [r.name for r in rows if r.public] == []
    assert [r.name for r in rows if not r.app] == []


async def test_the_app_role_cannot_rewrite_or_erase_the_audit_log(
    sessions: async_sessionmaker[AsyncSession], owner_engine: AsyncEngine
) -> None:
    tenant_id = uuid.uuid4()
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with tenant_transaction(sessions, tenant_id) as session:
                await session.execute(text(statement))


def test_an_app_role_that_would_bypass_rls_is_refused(database_url: str) -> None:
    role = f"reckon_probe_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq(database_url), autocommit=True) as connection:
        assert_role_is_restricted(connection)  # the real reckon_app is fine
        connection.execute(f'CREATE ROLE "{role}" NOLOGIN BYPASSRLS')
        try:
            with pytest.raises(UnsafeAppRole, match="BYPASSRLS"):
                assert_role_is_restricted(connection, role)
            connection.execute(f'ALTER ROLE "{role}" NOBYPASSRLS')
            assert_role_is_restricted(connection, role)
        finally:
            connection.execute(f'DROP ROLE "{role}"')
