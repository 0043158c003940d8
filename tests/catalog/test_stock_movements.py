"""Stock moves only by movements with a reason: POST/GET /products/{id}/stock-movements, the
opening stock and every booking's deduction recorded too, never below zero, and the
movements table is append-only for the application."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from tests.catalog.test_archive import booking, scalar, setup
from tests.factories import Business, add_user, make_catalog, sign_up

Client = AsyncTestClient[Litestar]


async def new_product(client: Client, business: Business, branch_id: str, quantity: int) -> str:
    created = await client.post(
        "/api/v1/products",
        headers=business.headers,
        json={
            "name": "Wax",
            "price": {"amount_minor": 1_000, "currency": "EGP"},
            "stock": [{"branch_id": branch_id, "quantity": quantity}],
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def move(
    client: Client, business: Business, product_id: str, **body: Any
) -> Any:  # the response
    return await client.post(
        f"/api/v1/products/{product_id}/stock-movements", headers=business.headers, json=body
    )


async def quantity(client: Client, business: Business, product_id: str) -> dict[str, int]:
    found = (await client.get(f"/api/v1/products/{product_id}", headers=business.headers)).json()
    return {level["branch_id"]: level["quantity"] for level in found["stock"]}


async def test_adjustments_apply_at_once_and_are_listed_with_the_opening_stock(
    client: Client,
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    branch = ids["branch_id"]
    product_id = await new_product(client, business, branch, 10)
    delivered = await move(
        client, business, product_id, branch_id=branch, delta=5, reason="delivery"
    )
    assert delivered.status_code == 201, delivered.text
    body = delivered.json()
    assert (body["delta"], body["quantity_after"], body["kind"], body["reason"]) == (
        5,
        15,
        "adjustment",
        "delivery",
    )
    assert body["actor_kind"] == "user"
    broken = await move(client, business, product_id, branch_id=branch, delta=-4, reason="broken")
    assert broken.json()["quantity_after"] == 11
    assert await quantity(client, business, product_id) == {branch: 11}
    listed = await client.get(
        f"/api/v1/products/{product_id}/stock-movements", headers=business.headers
    )
    assert listed.status_code == 200
    history = [(m["kind"], m["delta"], m["quantity_after"]) for m in listed.json()]
    assert sorted(history) == sorted(
        [("opening", 10, 10), ("adjustment", 5, 15), ("adjustment", -4, 11)]
    )


async def test_a_movement_that_would_go_below_zero_is_refused_and_changes_nothing(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    branch = ids["branch_id"]
    product_id = await new_product(client, business, branch, 3)
    refused = await move(client, business, product_id, branch_id=branch, delta=-4, reason="count")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["type"], problem["available"]) == ("insufficient_stock", 3)
    assert await quantity(client, business, product_id) == {branch: 3}
    async with owner_engine.connect() as conn:
        kinds = (await conn.execute(text("SELECT kind FROM stock_movements"))).scalars().all()
    assert kinds == ["opening"]
    exact = await move(client, business, product_id, branch_id=branch, delta=-3, reason="count")
    assert exact.json()["quantity_after"] == 0


async def test_stock_can_start_at_a_branch_that_had_none(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    product_id = await new_product(client, business, ids["branch_id"], 1)
    north = await client.post(
        "/api/v1/branches", headers=business.headers, json={"name": "North", "timezone": "UTC"}
    )
    north_id = north.json()["id"]
    empty = await move(client, business, product_id, branch_id=north_id, delta=-1, reason="x")
    assert empty.status_code == 409
    assert empty.json()["available"] == 0
    stocked = await move(client, business, product_id, branch_id=north_id, delta=7, reason="in")
    assert stocked.status_code == 201, stocked.text
    assert await quantity(client, business, product_id) == {ids["branch_id"]: 1, north_id: 7}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"delta": 0, "reason": "nothing"}, "delta"),
        ({"delta": 10**7, "reason": "a lot"}, "delta"),
        ({"delta": 1, "reason": "   "}, "reason"),
        ({"delta": 1, "reason": "x", "branch_id": str(uuid.UUID(int=7))}, "branch_id"),
    ],
)
async def test_a_bad_movement_is_a_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    product_id = await new_product(client, business, ids["branch_id"], 2)
    response = await move(client, business, product_id, **{"branch_id": ids["branch_id"], **body})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await quantity(client, business, product_id) == {ids["branch_id"]: 2}


async def test_a_movement_without_a_reason_is_refused(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    product_id = await new_product(client, business, ids["branch_id"], 2)
    response = await move(client, business, product_id, branch_id=ids["branch_id"], delta=1)
    assert response.status_code == 422
    assert await quantity(client, business, product_id) == {ids["branch_id"]: 2}


async def test_a_retried_movement_with_its_idempotency_key_applies_once(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    product_id = await new_product(client, business, ids["branch_id"], 2)
    path = f"/api/v1/products/{product_id}/stock-movements"
    headers = {**business.headers, "Idempotency-Key": f"delivery-{uuid.uuid4()}"}
    body = {"branch_id": ids["branch_id"], "delta": 6, "reason": "delivery"}
    first = await client.post(path, headers=headers, json=body)
    second = await client.post(path, headers=headers, json=body)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json() == first.json()
    assert await quantity(client, business, product_id) == {ids["branch_id"]: 8}


async def test_staff_cannot_move_stock_and_another_tenant_cannot_see_it(client: Client) -> None:
    business = await sign_up(client)
    other = await sign_up(client)
    ids = await make_catalog(client, business)
    product_id = await new_product(client, business, ids["branch_id"], 2)
    staff = {"Authorization": f"Bearer {await add_user(client, business, 'staff')}"}
    path = f"/api/v1/products/{product_id}/stock-movements"
    body = {"branch_id": ids["branch_id"], "delta": -2, "reason": "took it"}
    refused = await client.post(path, headers=staff, json=body)
    assert refused.status_code == 403
    for response in (
        await client.post(path, headers=other.headers, json=body),
        await client.get(path, headers=other.headers),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "not_found"
    assert await quantity(client, business, product_id) == {ids["branch_id"]: 2}


async def test_a_booking_records_its_deduction_as_a_movement_naming_it(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, products=1, stock=5)
    [product_id] = shop.product_ids
    lines = [{"product_id": str(product_id), "quantity": 2}]
    placed = await client.post(
        "/api/v1/bookings", headers=business.headers, json=booking(shop, 10, products=lines)
    )
    assert placed.status_code == 201, placed.text
    listed = await client.get(
        f"/api/v1/products/{product_id}/stock-movements", headers=business.headers
    )
    [movement] = listed.json()
    assert (movement["kind"], movement["delta"], movement["quantity_after"]) == ("booking", -2, 3)
    assert movement["booking_id"] == placed.json()["id"]
    short = await client.post(
        "/api/v1/bookings",
        headers=business.headers,
        json=booking(shop, 12, products=[{"product_id": str(product_id), "quantity": 4}]),
    )
    assert short.status_code == 409
    assert short.json()["type"] == "out_of_stock"
    after = await client.get(
        f"/api/v1/products/{product_id}/stock-movements", headers=business.headers
    )
    assert len(after.json()) == 1


async def test_a_cancelled_booking_puts_its_products_back_as_a_restock_movement(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, products=1, stock=5)
    [product_id] = shop.product_ids
    lines = [{"product_id": str(product_id), "quantity": 2}]
    placed = await client.post(
        "/api/v1/bookings", headers=business.headers, json=booking(shop, 10, products=lines)
    )
    assert placed.status_code == 201, placed.text
    booking_id = placed.json()["id"]
    cancelled = await client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=business.headers)
    assert cancelled.status_code == 200, cancelled.text
    listed = await client.get(
        f"/api/v1/products/{product_id}/stock-movements", headers=business.headers
    )
    newest = listed.json()[0]
    assert (newest["kind"], newest["delta"], newest["quantity_after"]) == ("restock", 2, 5)
    assert newest["booking_id"] == booking_id
    # What the booking took and what its cancellation gave back cancel out, to the unit.
    moved = await scalar(
        owner_engine,
        "SELECT sum(delta) FROM stock_movements WHERE product_id = :p AND booking_id = :b",
        p=product_id,
        b=booking_id,
    )
    assert moved == 0


async def test_the_database_refuses_negative_stock_and_rewritten_movements(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    product_id = await new_product(client, business, ids["branch_id"], 2)
    with pytest.raises(IntegrityError, match="ck_product_stock_quantity"):
        async with tenant_transaction(sessions, business.tenant_id) as session:
            await session.execute(text("UPDATE product_stock SET quantity = quantity - 3"))
    for statement in ("UPDATE stock_movements SET delta = 99", "DELETE FROM stock_movements"):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with tenant_transaction(sessions, business.tenant_id) as session:
                await session.execute(text(statement))
    assert await quantity(client, business, product_id) == {ids["branch_id"]: 2}
    listed = await client.get(
        f"/api/v1/products/{product_id}/stock-movements", headers=business.headers
    )
    assert [(m["kind"], m["delta"]) for m in listed.json()] == [("opening", 2)]
