"""The sign-in directory (login_emails, migration 0032): every user's email next to their
business, kept in step by the use cases that write users, read by sign-in before the business
is known, and showing the application role nothing of other businesses."""

from __future__ import annotations

import uuid

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from tests.factories import PASSWORD, sign_up

Client = AsyncTestClient[Litestar]


async def directory(owner: AsyncEngine, tenant_id: uuid.UUID) -> dict[str, str]:
    """user id -> email, as the directory lists this business."""
    async with owner.connect() as connection:
        rows = await connection.execute(
            text("SELECT user_id, email FROM login_emails WHERE tenant_id = :t"), {"t": tenant_id}
        )
        return {str(row.user_id): row.email for row in rows}


async def login(client: Client, email: str) -> int:
    response = await client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    return response.status_code


async def test_sign_up_new_users_and_email_changes_keep_the_directory_in_step(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client, email="Owner-Dir@Example.com")
    me = (await client.get("/api/v1/me", headers=business.headers)).json()
    created = await client.post(
        "/api/v1/users",
        headers=business.headers,
        json={"email": "Staff-Dir@Example.com", "password": PASSWORD, "role": "staff"},
    )
    assert created.status_code == 201, created.text
    staff_id = created.json()["id"]
    assert await directory(owner_engine, business.tenant_id) == {
        me["user_id"]: "owner-dir@example.com",
        staff_id: "staff-dir@example.com",
    }

    moved = await client.patch(
        f"/api/v1/users/{staff_id}", headers=business.headers, json={"email": "moved@example.com"}
    )
    assert moved.status_code == 200, moved.text
    assert (await directory(owner_engine, business.tenant_id))[staff_id] == "moved@example.com"
    assert await login(client, "moved@example.com") == 200
    assert await login(client, "staff-dir@example.com") == 401


async def test_a_refused_email_change_leaves_the_directory_as_it_was(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    first = await client.post(
        "/api/v1/users",
        headers=business.headers,
        json={"email": "first@example.com", "password": PASSWORD, "role": "staff"},
    )
    await client.post(
        "/api/v1/users",
        headers=business.headers,
        json={"email": "second@example.com", "password": PASSWORD, "role": "staff"},
    )
    taken = await client.patch(
        f"/api/v1/users/{first.json()['id']}",
        headers=business.headers,
        json={"email": "second@example.com"},
    )
    assert taken.status_code == 409
    listed = await directory(owner_engine, business.tenant_id)
    assert listed[first.json()["id"]] == "first@example.com"
    assert sorted(listed.values()).count("second@example.com") == 1


async def test_sign_in_finds_users_through_the_directory(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    assert await login(client, business.email) == 200
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM login_emails WHERE tenant_id = :t"), {"t": business.tenant_id}
        )
    # The user row is untouched; without its directory entry no one signs in as them.
    assert await login(client, business.email) == 401


async def test_one_email_in_two_businesses_signs_in_to_the_older_account_first(
    client: Client,
) -> None:
    first = await sign_up(client, email="shared@example.com")
    await sign_up(client, email="shared@example.com")
    response = await client.post(
        "/api/v1/auth/token", json={"email": "shared@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["tenant_id"] == str(first.tenant_id)


async def test_the_app_role_sees_only_its_own_business_in_the_directory_and_cannot_erase_it(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    salon = await sign_up(client)
    cabins = await sign_up(client)
    async with sessions() as session, session.begin():
        unscoped = (await session.execute(text("SELECT count(*) FROM login_emails"))).scalar()
    assert unscoped == 0
    async with tenant_transaction(sessions, salon.tenant_id) as session:
        emails = (await session.execute(text("SELECT email FROM login_emails"))).scalars().all()
    assert emails == [salon.email]
    with pytest.raises(DBAPIError, match="row-level security"):
        async with tenant_transaction(sessions, salon.tenant_id) as session:
            await session.execute(
                text(
                    "INSERT INTO login_emails (tenant_id, user_id, email) "
                    "VALUES (:t, gen_random_uuid(), 'evil@example.com')"
                ),
                {"t": cabins.tenant_id},
            )
    with pytest.raises(DBAPIError, match="permission denied"):
        async with tenant_transaction(sessions, salon.tenant_id) as session:
            await session.execute(text("DELETE FROM login_emails"))
