"""The checkout is ONE transaction: a failure injected at any step (the booking row, the
stock deduction, the payment row, the ledger entry, the outbox row, the audit row) leaves
nothing behind — not a booking, not a posting, not an event, not a unit of stock."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.bookings.placing import place_booking
from app.bookings.rules import BookingRequest, Customer, LineItem
from tests.checkout.support import Client, count, local_slot, open_shop

STEPS = [
    "bookings",
    "booking_products",
    "product_stock",
    "payments",
    "journal_entries",
    "postings",
    "outbox",
    "audit_log",
]
WRITTEN = [
    "bookings",
    "booking_products",
    "payments",
    "journal_entries",
    "postings",
    "outbox",
    "audit_log",
]


async def add_product(client: Client, headers: dict[str, str], branch_id: str) -> str:
    response = await client.post(
        "/api/v1/products",
        headers=headers,
        json={
            "name": "Argan oil",
            "price": {"amount_minor": 4_500, "currency": "EGP"},
            "stock": [{"branch_id": branch_id, "quantity": 5}],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def fail_writes_to(owner: AsyncEngine, table: str) -> None:
    """A trigger that makes every write to `table` fail, as a crash at that step would."""
    async with owner.begin() as connection:
        await connection.execute(
            text(
                "CREATE OR REPLACE FUNCTION inject_failure() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected failure on %', TG_TABLE_NAME; END $$"
            )
        )
        await connection.execute(
            text(
                f"CREATE TRIGGER inject_failure BEFORE INSERT OR UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION inject_failure()"
            )
        )


async def heal(owner: AsyncEngine, table: str) -> None:
    async with owner.begin() as connection:
        await connection.execute(text(f"DROP TRIGGER IF EXISTS inject_failure ON {table}"))


@pytest.mark.parametrize("step", STEPS)
async def test_failure_at_any_step_leaves_nothing_behind(
    step: str,
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    shop = await open_shop(client)
    product_id = await add_product(client, shop.business.headers, shop.branch_id)
    before = {
        table: await count(owner_engine, f"SELECT count(*) FROM {table}") for table in WRITTEN
    }
    request = BookingRequest(
        service_id=uuid.UUID(shop.service_id),
        branch_id=uuid.UUID(shop.branch_id),
        start=local_slot(3, 11),
        customer=Customer("Nour", "nour@example.com", None),
        provider="sandbox",
        resource_id=uuid.UUID(shop.resource_id),
        products=(LineItem(uuid.UUID(product_id), 2),),
    )
    await fail_writes_to(owner_engine, step)
    try:
        with pytest.raises(DBAPIError, match="injected failure"):
            async with sessions() as session:
                await place_booking(
                    session, shop.business.tenant_id, audit.PUBLIC, request, local_slot(0, 0)
                )
    finally:
        await heal(owner_engine, step)
    after = {table: await count(owner_engine, f"SELECT count(*) FROM {table}") for table in WRITTEN}
    assert after == before
    assert await count(owner_engine, "SELECT quantity FROM product_stock") == 5
    # And with the fault gone the same request goes through whole.
    async with sessions() as session:
        placed = await place_booking(
            session, shop.business.tenant_id, audit.PUBLIC, request, local_slot(0, 0)
        )
    assert placed.payments and placed.booking.status == "pending_payment"
    assert await count(owner_engine, "SELECT quantity FROM product_stock") == 3
    assert await count(owner_engine, "SELECT count(*) FROM outbox") > before["outbox"]
