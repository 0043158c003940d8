"""Booking routes over HTTP: the API contract's paths and fields, states, and 422s that change
nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.bookings.setup import Shop, make_shop
from tests.factories import Business, add_user, sign_up

Client = AsyncTestClient[Litestar]


def soon(days: int = 7) -> date:
    return datetime.now(UTC).date() + timedelta(days=days)


def body(shop: Shop, start: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "service_id": str(shop.service_id),
        "branch_id": str(shop.branch_id),
        "resource_id": str(shop.resource_id),
        "start": start.isoformat(),
        "customer": {"name": "Omar Said", "email": "omar@example.com"},
        "payment": {"provider": "cash"},
        **extra,
    }


async def setup(client: Client, owner: AsyncEngine, **shop: Any) -> tuple[Business, Shop]:
    business = await sign_up(client)
    return business, await make_shop(owner, business.tenant_id, **shop)


async def count(owner: AsyncEngine, sql: str) -> int:
    async with owner.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_post_booking_returns_the_contract_shape_and_get_reads_it_back(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, price_minor=15_000)
    start = shop.at(soon(), 10)
    created = await client.post(
        "/api/v1/bookings", headers=business.headers, json=body(shop, start)
    )
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["status"] == "confirmed"
    assert datetime.fromisoformat(data["start"]) == start
    assert datetime.fromisoformat(data["end"]) == start + timedelta(hours=1)
    assert data["resource_id"] == str(shop.resource_id)
    assert data["total"] == {"amount_minor": 15_000, "currency": "EGP"}
    payment = data["payment"]
    assert payment["id"] is not None
    assert (payment["provider"], payment["status"], payment["checkout_url"]) == (
        "cash",
        "requires_payment",
        None,
    )
    read = await client.get(f"/api/v1/bookings/{data['id']}", headers=business.headers)
    assert read.status_code == 200
    assert read.json()["id"] == data["id"]
    assert (
        await count(owner_engine, "SELECT count(*) FROM audit_log WHERE action = 'booking.placed'")
        == 1
    )


async def test_online_payment_holds_the_slot_pending_payment_for_fifteen_minutes(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    created = await client.post(
        "/api/v1/bookings",
        headers=business.headers,
        json=body(shop, shop.at(soon(), 11), payment={"provider": "stripe"}),
    )
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["status"] == "pending_payment"
    assert data["payment"]["status"] == "requires_payment"
    hold = datetime.fromisoformat(data["hold_expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=14) < hold <= timedelta(minutes=15)


async def test_second_booking_for_the_same_slot_is_a_409_slot_unavailable(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    start = shop.at(soon(), 12)
    first = await client.post("/api/v1/bookings", headers=business.headers, json=body(shop, start))
    assert first.status_code == 201
    second = await client.post("/api/v1/bookings", headers=business.headers, json=body(shop, start))
    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.json()["type"] == "slot_unavailable"


async def test_idempotency_key_replays_the_same_booking(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    headers = {**business.headers, "Idempotency-Key": str(uuid.uuid4())}
    payload = body(shop, shop.at(soon(), 13))
    first = await client.post("/api/v1/bookings", headers=headers, json=payload)
    again = await client.post("/api/v1/bookings", headers=headers, json=payload)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert await count(owner_engine, "SELECT count(*) FROM bookings") == 1


async def test_invalid_requests_are_422_and_write_nothing(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    start = shop.at(soon(), 10)
    naive = body(shop, start)
    naive["start"] = start.replace(tzinfo=None).isoformat()
    bad = [
        naive,
        body(shop, start, party_size=0),
        body(shop, start, customer={"name": " "}),
        body(shop, start, customer={"name": "A", "email": "not-an-email"}),
        body(shop, start, payment={"provider": "paypal"}),
        body(shop, start, end=(start + timedelta(minutes=45)).isoformat()),
        body(shop, start, recurrence={"freq": "daily"}),
        body(shop, start, recurrence={"freq": "weekly", "count": 101}),
        body(shop, start, unknown_field=1),
        body(shop, shop.at(soon(), 8)),  # before opening: valid request, but not bookable
    ]
    statuses = []
    for payload in bad:
        response = await client.post("/api/v1/bookings", headers=business.headers, json=payload)
        statuses.append(response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert statuses == [422] * 9 + [409]
    assert await count(owner_engine, "SELECT count(*) FROM bookings") == 0
    assert (
        await count(owner_engine, "SELECT count(*) FROM audit_log WHERE entity_type = 'booking'")
        == 0
    )


async def test_unknown_service_is_404(client: Client, owner_engine: AsyncEngine) -> None:
    business, shop = await setup(client, owner_engine)
    payload = body(shop, shop.at(soon(), 10), service_id=str(uuid.uuid4()))
    response = await client.post("/api/v1/bookings", headers=business.headers, json=payload)
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


async def test_list_filters_by_range_status_and_resource(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, resources=2)
    day = soon()
    ids = []
    for hour, resource in ((10, 0), (11, 1), (12, 0)):
        response = await client.post(
            "/api/v1/bookings",
            headers=business.headers,
            json=body(shop, shop.at(day, hour), resource_id=str(shop.resource_ids[resource])),
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    await client.post(f"/api/v1/bookings/{ids[2]}/cancel", headers=business.headers)
    query = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}
    everything = await client.get("/api/v1/bookings", headers=business.headers, params=query)
    assert [b["id"] for b in everything.json()] == ids
    on_first = await client.get(
        "/api/v1/bookings",
        headers=business.headers,
        params={**query, "resource_id": str(shop.resource_ids[0]), "status": "confirmed"},
    )
    assert [b["id"] for b in on_first.json()] == [ids[0]]
    tomorrow = await client.get(
        "/api/v1/bookings",
        headers=business.headers,
        params={
            "from": f"{day + timedelta(days=1)}T00:00:00+02:00",
            "to": f"{day + timedelta(days=2)}T00:00:00+02:00",
        },
    )
    assert tomorrow.json() == []
    missing = await client.get(
        "/api/v1/bookings", headers=business.headers, params={"from": day.isoformat()}
    )
    assert missing.status_code == 422


async def test_staff_can_create_and_modify_bookings(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    staff = {"Authorization": f"Bearer {await add_user(client, business, 'staff')}"}
    created = await client.post(
        "/api/v1/bookings", headers=staff, json=body(shop, shop.at(soon(), 10))
    )
    assert created.status_code == 201, created.text
    moved = await client.post(
        f"/api/v1/bookings/{created.json()['id']}/reschedule",
        headers=staff,
        json={"start": shop.at(soon(), 15).isoformat()},
    )
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["start"]) == shop.at(soon(), 15)


async def test_bookings_of_another_tenant_are_not_found(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    other = await sign_up(client)
    created = await client.post(
        "/api/v1/bookings", headers=business.headers, json=body(shop, shop.at(soon(), 10))
    )
    booking_id = created.json()["id"]
    assert (
        await client.get(f"/api/v1/bookings/{booking_id}", headers=other.headers)
    ).status_code == 404
    cancel = await client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=other.headers)
    assert cancel.status_code == 404
    assert (await client.get(f"/api/v1/bookings/{booking_id}", headers=business.headers)).json()[
        "status"
    ] == "confirmed"


async def test_routes_need_authentication(client: Client) -> None:
    response = await client.get(f"/api/v1/bookings/{uuid.uuid4()}")
    assert response.status_code == 401
