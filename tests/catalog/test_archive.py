"""Archiving instead of deleting: an archived service, resource, branch or product leaves
availability, public pages and default lists, and asking for it by id to book says so with
its own problem type; it stays readable by id and in `?archived=true|all`, existing bookings
keep pointing at it, and `archived: false` brings it back. A price change never alters a
booking already made."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.bookings.setup import Shop, make_shop
from tests.factories import Business, make_catalog, sign_up

Client = AsyncTestClient[Litestar]


def soon(days: int = 7) -> date:
    return datetime.now(UTC).date() + timedelta(days=days)


def booking(shop: Shop, hour: int, **extra: Any) -> dict[str, Any]:
    return {
        "service_id": str(shop.service_id),
        "branch_id": str(shop.branch_id),
        "start": shop.at(soon(), hour).isoformat(),
        "customer": {"name": "Mona Adel"},
        "payment": {"provider": "cash"},
        **extra,
    }


def availability_query(shop: Shop) -> dict[str, str]:
    return {
        "service_id": str(shop.service_id),
        "branch_id": str(shop.branch_id),
        "from": soon().isoformat(),
        "to": soon().isoformat(),
    }


async def setup(client: Client, owner: AsyncEngine, **shop: Any) -> tuple[Business, Shop]:
    business = await sign_up(client)
    return business, await make_shop(owner, business.tenant_id, **shop)


async def scalar(owner: AsyncEngine, sql: str, **params: Any) -> Any:
    async with owner.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def archive(client: Client, business: Business, path: str, archived: bool = True) -> Any:
    response = await client.patch(path, headers=business.headers, json={"archived": archived})
    assert response.status_code == 200, response.text
    assert response.json()["archived"] is archived
    return response.json()


def problem(response: Any, status: int, kind: str, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == kind
    assert [e["field"] for e in body["errors"]] == [field]


async def test_archived_service_leaves_lists_public_pages_availability_and_booking(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    placed = await client.post("/api/v1/bookings", headers=business.headers, json=booking(shop, 10))
    assert placed.status_code == 201, placed.text
    path = f"/api/v1/services/{shop.service_id}"
    await archive(client, business, path)

    assert (await client.get("/api/v1/services", headers=business.headers)).json() == []
    only = (await client.get("/api/v1/services?archived=true", headers=business.headers)).json()
    every = (await client.get("/api/v1/services?archived=all", headers=business.headers)).json()
    assert [s["id"] for s in only] == [s["id"] for s in every] == [str(shop.service_id)]
    by_id = await client.get(path, headers=business.headers)
    assert by_id.status_code == 200
    assert by_id.json()["archived"] is True
    assert (await client.get(f"/public/{business.slug}/services")).json() == []

    query = availability_query(shop)
    staff_view = await client.get("/api/v1/availability", headers=business.headers, params=query)
    problem(staff_view, 422, "service_archived", "service_id")
    public_view = await client.get(f"/public/{business.slug}/availability", params=query)
    problem(public_view, 422, "service_archived", "service_id")
    for url, headers in (
        ("/api/v1/bookings", business.headers),
        (f"/public/{business.slug}/bookings", {}),
    ):
        refused = await client.post(url, headers=headers, json=booking(shop, 14))
        problem(refused, 422, "service_archived", "service_id")
    assert await scalar(owner_engine, "SELECT count(*) FROM bookings") == 1

    # The booking made before still reads, pointing at the archived service.
    kept = await client.get(f"/api/v1/bookings/{placed.json()['id']}", headers=business.headers)
    assert kept.status_code == 200
    assert await scalar(owner_engine, "SELECT service_id FROM bookings") == shop.service_id

    await archive(client, business, path, archived=False)
    again = await client.get("/api/v1/availability", headers=business.headers, params=query)
    assert again.status_code == 200
    assert again.json()["slots"]
    actions = await scalar(
        owner_engine,
        "SELECT array_agg(action ORDER BY at) FROM audit_log WHERE entity_id = :id",
        id=shop.service_id,
    )
    assert actions == ["service.archived", "service.restored"]


async def test_archived_resource_is_never_offered_and_cannot_be_booked_by_id(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, resources=2)
    kept, gone = shop.resource_ids
    await archive(client, business, f"/api/v1/resources/{gone}")

    found = await client.get(
        "/api/v1/availability", headers=business.headers, params=availability_query(shop)
    )
    assert found.status_code == 200, found.text
    assert {slot["resource_id"] for slot in found.json()["slots"]} == {str(kept)}
    refused = await client.post(
        "/api/v1/bookings",
        headers=business.headers,
        json=booking(shop, 10, resource_id=str(gone)),
    )
    problem(refused, 422, "resource_archived", "resource_id")
    anyone = await client.post("/api/v1/bookings", headers=business.headers, json=booking(shop, 10))
    assert anyone.status_code == 201, anyone.text
    assert anyone.json()["resource_id"] == str(kept)

    [public] = (await client.get(f"/public/{business.slug}/services")).json()
    assert public["resource_ids"] == [str(kept)]
    listed = (await client.get("/api/v1/resources", headers=business.headers)).json()
    assert [r["id"] for r in listed] == [str(kept)]
    shown = await client.get(f"/api/v1/resources/{gone}", headers=business.headers)
    assert (shown.status_code, shown.json()["archived"]) == (200, True)

    new_service = await client.post(
        "/api/v1/services",
        headers=business.headers,
        json={
            "name": "Shave",
            "policy": "time_slot",
            "duration_minutes": 30,
            "slot_step_minutes": 30,
            "price": {"amount_minor": 500, "currency": "EGP"},
            "pricing": "fixed",
            "resource_ids": [str(gone)],
        },
    )
    assert new_service.status_code == 422
    assert new_service.json()["errors"] == [
        {"field": "resource_ids", "message": f"archived resource: {gone}"}
    ]
    # A service that already had the resource keeps it through an unrelated edit.
    renamed = await client.patch(
        f"/api/v1/services/{shop.service_id}",
        headers=business.headers,
        json={"name": "Renamed", "resource_ids": [str(kept), str(gone)]},
    )
    assert renamed.status_code == 200, renamed.text


async def test_archived_branch_takes_no_bookings_and_no_new_resources(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    path = f"/api/v1/branches/{shop.branch_id}"
    await archive(client, business, path)
    query = availability_query(shop)
    found = await client.get("/api/v1/availability", headers=business.headers, params=query)
    problem(found, 422, "branch_archived", "branch_id")
    refused = await client.post("/api/v1/bookings", headers=business.headers, json=booking(shop, 9))
    problem(refused, 422, "branch_archived", "branch_id")
    resource = await client.post(
        "/api/v1/resources",
        headers=business.headers,
        json={"name": "Chair", "kind": "staff", "capacity": 1, "branch_ids": [str(shop.branch_id)]},
    )
    assert resource.status_code == 422
    assert resource.json()["errors"][0]["field"] == "branch_ids"
    assert (await client.get("/api/v1/branches", headers=business.headers)).json() == []
    archived = await client.get("/api/v1/branches?archived=true", headers=business.headers)
    assert [b["id"] for b in archived.json()] == [str(shop.branch_id)]
    assert (await client.get(path, headers=business.headers)).json()["archived"] is True


async def test_archived_product_cannot_be_sold_and_keeps_its_stock(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, products=1, stock=5)
    [product_id] = shop.product_ids
    path = f"/api/v1/products/{product_id}"
    await archive(client, business, path)
    lines = [{"product_id": str(product_id), "quantity": 1}]
    refused = await client.post(
        "/api/v1/bookings", headers=business.headers, json=booking(shop, 11, products=lines)
    )
    problem(refused, 422, "product_archived", "products")
    assert await scalar(owner_engine, "SELECT quantity FROM product_stock") == 5
    assert await scalar(owner_engine, "SELECT count(*) FROM bookings") == 0
    assert (await client.get("/api/v1/products", headers=business.headers)).json() == []
    listed = (await client.get("/api/v1/products?archived=all", headers=business.headers)).json()
    assert [p["id"] for p in listed] == [str(product_id)]
    await archive(client, business, path, archived=False)
    sold = await client.post(
        "/api/v1/bookings", headers=business.headers, json=booking(shop, 11, products=lines)
    )
    assert sold.status_code == 201, sold.text


async def test_a_price_change_never_alters_a_booking_already_made(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, price_minor=10_000, products=1)
    [product_id] = shop.product_ids
    lines = [{"product_id": str(product_id), "quantity": 2}]
    first = await client.post(
        "/api/v1/bookings", headers=business.headers, json=booking(shop, 10, products=lines)
    )
    assert first.status_code == 201, first.text
    # 10,000 for the service and 2 x 2,500 for the product.
    assert first.json()["total"] == {"amount_minor": 15_000, "currency": "EGP"}
    service_patch = await client.patch(
        f"/api/v1/services/{shop.service_id}",
        headers=business.headers,
        json={
            "price": {"amount_minor": 40_000, "currency": "EGP"},
            "branch_prices": [
                {"branch_id": str(shop.branch_id), "amount_minor": 30_000, "pricing": "fixed"}
            ],
        },
    )
    assert service_patch.status_code == 200, service_patch.text
    product_patch = await client.patch(
        f"/api/v1/products/{product_id}",
        headers=business.headers,
        json={"price": {"amount_minor": 9_000, "currency": "EGP"}},
    )
    assert product_patch.status_code == 200, product_patch.text

    read = (
        await client.get(f"/api/v1/bookings/{first.json()['id']}", headers=business.headers)
    ).json()
    assert read["total"] == {"amount_minor": 15_000, "currency": "EGP"}
    assert [(p["quantity"], p["unit_price_minor"]) for p in read["products"]] == [(2, 2_500)]
    assert (
        await scalar(
            owner_engine,
            "SELECT unit_price_minor FROM bookings WHERE id = :id",
            id=first.json()["id"],
        )
        == 10_000
    )
    second = await client.post(
        "/api/v1/bookings", headers=business.headers, json=booking(shop, 12, products=lines)
    )
    assert second.status_code == 201, second.text
    # The branch override applies at this branch: 30,000 + 2 x 9,000.
    assert second.json()["total"] == {"amount_minor": 48_000, "currency": "EGP"}


@pytest.mark.parametrize("value", ["yes", "1", ""])
async def test_an_unknown_archived_filter_is_a_422(client: Client, value: str) -> None:
    business = await sign_up(client)
    await make_catalog(client, business)
    response = await client.get(f"/api/v1/services?archived={value}", headers=business.headers)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "validation_error"


async def test_a_resource_never_shrinks_below_the_seats_its_bookings_hold(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, capacity=3)
    for party in (1, 1):
        placed = await client.post(
            "/api/v1/bookings",
            headers=business.headers,
            json=booking(shop, 10, resource_id=str(shop.resource_id), party_size=party),
        )
        assert placed.status_code == 201, placed.text
    path = f"/api/v1/resources/{shop.resource_id}"
    refused = await client.patch(path, headers=business.headers, json={"capacity": 1})
    assert refused.status_code == 409, refused.text
    assert (refused.json()["type"], refused.json()["booked"]) == ("capacity_below_bookings", 2)
    assert (await client.get(path, headers=business.headers)).json()["capacity"] == 3
    shrunk = await client.patch(path, headers=business.headers, json={"capacity": 2})
    assert shrunk.status_code == 200, shrunk.text
    full = await client.post(
        "/api/v1/bookings",
        headers=business.headers,
        json=booking(shop, 10, resource_id=str(shop.resource_id)),
    )
    assert full.status_code == 409
    assert full.json()["type"] == "slot_unavailable"
