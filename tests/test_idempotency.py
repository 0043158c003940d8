"""The Idempotency-Key mechanism every POST reuses."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from litestar import Litestar, Request, Response, Router, post
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.asgi import create_app
from app.http import idempotent, manager_only, principal
from app.settings import Settings
from app.tenancy.service import create_user
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


async def test_work_committed_before_a_crash_is_never_run_again(
    settings: Settings, owner_engine: AsyncEngine
) -> None:
    """The operation commits, then the process fails before the response is stored: the key
    already says 'executed' (written in the operation's own transaction), so a retry is
    refused instead of creating the user a second time."""

    @post("/test/crash-after-commit", guards=[manager_only])
    async def crash_after_commit(
        request: Request[Any, Any, Any], session: AsyncSession, data: dict[str, str]
    ) -> Response[bytes]:
        actor = principal(request)

        async def run() -> tuple[int, Any]:
            await create_user(
                session, actor, email=data["email"], password="long enough pw", role="staff"
            )
            raise RuntimeError("the process dies after the commit")

        return await idempotent(request, actor.tenant_id, run)

    app = create_app(settings, extra_routers=[Router("/", route_handlers=[crash_after_commit])])
    async with AsyncTestClient(app=app) as client:
        business = await sign_up(client)
        headers = {**business.headers, "Idempotency-Key": "crash-1"}
        body = {"email": "once@example.com"}
        first = await client.post("/test/crash-after-commit", json=body, headers=headers)
        assert first.status_code == 500
        soon = await client.post("/test/crash-after-commit", json=body, headers=headers)
        assert soon.status_code == 409
        async with owner_engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE idempotency_keys SET locked_at = now() - interval '1 hour' "
                    "WHERE key = 'crash-1'"
                )
            )
        late = await client.post("/test/crash-after-commit", json=body, headers=headers)
        assert late.status_code == 409
        assert late.json()["type"] == "idempotency_outcome_unknown"
        assert await _user_count(owner_engine, business.tenant_id) == 2  # owner + one staff
