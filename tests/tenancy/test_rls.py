"""Row-level security: the database, not the code, keeps tenants apart."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import set_tenant
from tests.factories import add_user, sign_up

Client = AsyncTestClient[Litestar]


async def test_query_without_where_clause_sees_only_the_current_tenant(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    salon = await sign_up(client)
    cabins = await sign_up(client, currency="USD", timezone="America/Denver")
    await add_user(client, salon, "staff")
    await add_user(client, cabins, "admin")

    async with sessions() as session, session.begin():
        await set_tenant(session, salon.tenant_id)
        # The "bug": no WHERE tenant_id = ... at all.
        tenant_ids = set((await session.execute(text("SELECT tenant_id FROM users"))).scalars())
        tenants = (await session.execute(text("SELECT id FROM tenants"))).scalars().all()
        audit = set((await session.execute(text("SELECT tenant_id FROM audit_log"))).scalars())
    assert tenant_ids == {salon.tenant_id}
    assert list(tenants) == [salon.tenant_id]
    assert audit == {salon.tenant_id}

    async with sessions() as session, session.begin():
        await set_tenant(session, salon.tenant_id)
        # Even asking for the other tenant's rows explicitly returns nothing.
        rows = (
            await session.execute(
                text("SELECT * FROM users WHERE tenant_id = :t"), {"t": cabins.tenant_id}
            )
        ).all()
    assert rows == []


async def test_without_tenant_set_the_app_role_sees_no_rows(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(client)
    async with sessions() as session, session.begin():
        count = (await session.execute(text("SELECT count(*) FROM users"))).scalar_one()
    assert count == 0


async def test_app_role_cannot_write_rows_for_another_tenant(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    salon = await sign_up(client)
    cabins = await sign_up(client)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with sessions() as session, session.begin():
            await set_tenant(session, salon.tenant_id)
            await session.execute(
                text(
                    "INSERT INTO users (tenant_id, id, email, password_hash, role) "
                    "VALUES (:t, gen_random_uuid(), 'evil@example.com', 'x', 'owner')"
                ),
                {"t": cabins.tenant_id},
            )


async def test_app_role_is_neither_superuser_nor_bypassrls(app_engine: AsyncEngine) -> None:
    async with app_engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
    assert tuple(row) == (False, False)


async def test_every_tenant_table_has_rls_enabled(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as connection:
        missing = (
            (
                await connection.execute(
                    text(
                        "SELECT c.relname FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' "
                        "WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relrowsecurity"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert missing == []
