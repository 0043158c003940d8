"""The Idempotency-Key mechanism every POST reuses."""

from __future__ import annotations

import asyncio
import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import sign_up

Client = AsyncTestClient[Litestar]


def _user(email: str) -> dict[str, str]:
    return {"email": email, "password": "long enough pw", "role": "staff"}


async def _user_count(owner_engine: AsyncEngine, tenant_id: uuid.UUID) -> int:
    async with owner_engine.connect() as connection:
        return int(
            (
                await connection.execute(
                    text("SELECT count(*) FROM users WHERE tenant_id = :t"), {"t": tenant_id}
                )
            ).scalar_one()
        )


async def test_same_key_and_body_replays_the_first_response(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    headers = {**business.headers, "Idempotency-Key": "create-user-1"}
    first = await client.post("/api/v1/users", json=_user("a@example.com"), headers=headers)
    second = await client.post("/api/v1/users", json=_user("a@example.com"), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await _user_count(owner_engine, business.tenant_id) == 2  # owner + one staff


async def test_same_key_with_different_body_is_422_reused(client: Client) -> None:
    business = await sign_up(client)
    headers = {**business.headers, "Idempotency-Key": "create-user-2"}
    await client.post("/api/v1/users", json=_user("a@example.com"), headers=headers)
    reused = await client.post("/api/v1/users", json=_user("b@example.com"), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["type"] == "idempotency_key_reused"


async def test_domain_errors_are_replayed_too(client: Client) -> None:
    business = await sign_up(client)
    await client.post("/api/v1/users", json=_user("dup@example.com"), headers=business.headers)
    headers = {**business.headers, "Idempotency-Key": "dup-user"}
    first = await client.post("/api/v1/users", json=_user("dup@example.com"), headers=headers)
    second = await client.post("/api/v1/users", json=_user("dup@example.com"), headers=headers)
    assert first.status_code == second.status_code == 409
    assert second.headers.get("idempotent-replayed") == "true"


async def test_keys_are_scoped_per_tenant(client: Client, owner_engine: AsyncEngine) -> None:
    one, two = await sign_up(client), await sign_up(client)
    for business in (one, two):
        response = await client.post(
            "/api/v1/users",
            json=_user("same@example.com"),
            headers={**business.headers, "Idempotency-Key": "shared-key"},
        )
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers


async def test_concurrent_duplicates_do_not_both_execute(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    headers = {**business.headers, "Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *[
            client.post("/api/v1/users", json=_user("race@example.com"), headers=headers)
            for _ in range(8)
        ]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    for response in responses:
        if response.status_code == 409:
            assert response.json()["type"] == "idempotency_key_in_progress"
    assert await _user_count(owner_engine, business.tenant_id) == 2


async def test_overlong_key_is_rejected(client: Client) -> None:
    business = await sign_up(client)
    response = await client.post(
        "/api/v1/users",
        json=_user("a@example.com"),
        headers={**business.headers, "Idempotency-Key": "k" * 300},
    )
    assert response.status_code == 422
