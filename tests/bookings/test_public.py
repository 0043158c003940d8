"""Public booking by tenant slug, rate limited per client address (Redis; fails open)."""

from __future__ import annotations

import dataclasses
import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from app.edge.asgi import create_app
from app.settings import Settings
from tests.bookings.test_routes import body, count, setup, soon

Client = AsyncTestClient[Litestar]


async def test_public_booking_by_slug_needs_no_token_and_is_audited_as_public(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    payload = body(shop, shop.at(soon(), 10), payment={"provider": "sandbox"})
    created = await client.post(f"/public/{business.slug}/bookings", json=payload)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending_payment"
    assert (
        await count(
            owner_engine,
            "SELECT count(*) FROM audit_log WHERE actor_kind = "
            "'public' AND action = 'booking.placed'",
        )
        == 1
    )
    again = await client.post(f"/public/{business.slug}/bookings", json=payload)
    assert again.status_code == 409


async def test_public_booking_for_unknown_slug_is_404(client: Client) -> None:
    payload = {
        "service_id": str(uuid.uuid4()),
        "branch_id": str(uuid.uuid4()),
        "start": "2030-01-05T10:00:00+02:00",
        "customer": {"name": "A"},
        "payment": {"provider": "cash"},
    }
    response = await client.post("/public/no-such-business/bookings", json=payload)
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"
    response = await client.get(
        "/public/no-such-business/availability",
        params={
            "service_id": str(uuid.uuid4()),
            "branch_id": str(uuid.uuid4()),
            "from": "2030-01-01",
            "to": "2030-01-02",
        },
    )
    assert response.status_code == 404


async def test_public_routes_are_rate_limited_per_address_with_retry_after(
    settings: Settings, client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    strict = dataclasses.replace(
        settings, public_rate_limit_per_minute=3, redis_namespace=f"rl-{uuid.uuid4().hex[:8]}"
    )
    async with AsyncTestClient(app=create_app(strict)) as limited:
        statuses = []
        for hour in (10, 11, 12, 13, 14):
            response = await limited.post(
                f"/public/{business.slug}/bookings", json=body(shop, shop.at(soon(), hour))
            )
            statuses.append(response.status_code)
        assert statuses == [201, 201, 201, 429, 429]
        assert response.json()["type"] == "rate_limited"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(response.headers["retry-after"]) <= 61
        query = {
            "service_id": str(shop.service_id),
            "branch_id": str(shop.branch_id),
            "from": str(soon()),
            "to": str(soon()),
        }
        availability = await limited.get(f"/public/{business.slug}/availability", params=query)
        assert availability.status_code == 429
    assert await count(owner_engine, "SELECT count(*) FROM bookings") == 3


async def test_rate_limit_allows_requests_when_redis_is_down(
    settings: Settings, client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    no_redis = dataclasses.replace(
        settings, public_rate_limit_per_minute=1, redis_url="redis://127.0.0.1:1/0"
    )
    async with AsyncTestClient(app=create_app(no_redis)) as degraded:
        for hour in (10, 11, 12):
            response = await degraded.post(
                f"/public/{business.slug}/bookings", json=body(shop, shop.at(soon(), hour))
            )
            assert response.status_code == 201, response.text
