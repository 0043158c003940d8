"""GET /api/v1/customers and /api/v1/customers/{id}: search, keyset pages, the lifetime value
from the ledger after a capture and a refund, staff access, and another business's customer
as a 404 that row-level security enforces too."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import set_tenant
from tests.checkout.support import PRICE, Client, Shop, balance, book, local_slot, open_shop
from tests.checkout.test_money_path import pay_on_sandbox_page
from tests.factories import add_user


async def place(
    client: Client, shop: Shop, customer: dict[str, str], hour: int, *, days: int = 3
) -> dict[str, Any]:
    body = {
        "service_id": shop.service_id,
        "branch_id": shop.branch_id,
        "resource_id": shop.resource_id,
        "start": local_slot(days, hour).isoformat(),
        "customer": customer,
        "payment": {"provider": "cash"},
    }
    response = await client.post("/api/v1/bookings", json=body, headers=shop.business.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def customers(client: Client, shop: Shop, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/customers", params=params, headers=shop.business.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


PEOPLE = [
    {"name": "Layla Hassan", "email": "layla@example.com", "phone": "+20 100 555 0001"},
    {"name": "Omar Farouk", "email": "omar@nile.example.org", "phone": "+20 100 555 0002"},
    {"name": "Sara Nabil", "phone": "+20 122 777 0003"},
    {"name": "Mina 100% Real", "email": "mina@example.com"},
    {"name": "Hana_Adel", "email": "hana@example.com"},
]


async def test_search_matches_name_email_or_phone_digits_and_escapes_wildcards(
    client: Client,
) -> None:
    shop = await open_shop(client)
    for hour, person in enumerate(PEOPLE, start=9):
        await place(client, shop, person, hour)

    def names(body: dict[str, Any]) -> list[str]:
        return [c["name"] for c in body["items"]]

    assert names(await customers(client, shop, q="LAYLA")) == ["Layla Hassan"]
    assert names(await customers(client, shop, q="nile.example")) == ["Omar Farouk"]
    assert names(await customers(client, shop, q="122-777")) == ["Sara Nabil"]
    assert names(await customers(client, shop, q="555 000")) == ["Layla Hassan", "Omar Farouk"]
    assert names(await customers(client, shop, q="%")) == ["Mina 100% Real"]
    assert names(await customers(client, shop, q="a_a")) == ["Hana_Adel"]
    assert names(await customers(client, shop, q="nobody")) == []
    everyone = await customers(client, shop)
    assert names(everyone) == sorted(p["name"] for p in PEOPLE)
    assert all(c["bookings_count"] == 1 for c in everyone["items"])
    too_long = await client.get(
        "/api/v1/customers", params={"q": "x" * 101}, headers=shop.business.headers
    )
    assert too_long.status_code in (400, 422)
    assert too_long.headers["content-type"].startswith("application/problem+json")


async def test_keyset_pages_cover_every_customer_once_in_name_order(client: Client) -> None:
    shop = await open_shop(client)
    for hour, person in enumerate(PEOPLE, start=9):
        await place(client, shop, person, hour)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = await customers(client, shop, **params)
        seen += [c["name"] for c in body["items"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(p["name"] for p in PEOPLE)
    bad = await client.get(
        "/api/v1/customers", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=shop.business.headers
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    zero = await client.get("/api/v1/customers", params={"limit": 0}, headers=shop.business.headers)
    assert zero.status_code in (400, 422)
    assert zero.headers["content-type"].startswith("application/problem+json")


async def test_customer_page_has_history_no_shows_and_lifetime_value_from_the_ledger(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop = await open_shop(client)
    paid = await book(client, shop, days_ahead=4, hour=10)
    await pay_on_sandbox_page(client, paid["payment"]["checkout_url"])
    refund = await client.post(
        f"/api/v1/bookings/{paid['id']}/refunds",
        json={"amount_minor": 5_000, "reason": "goodwill"},
        headers=shop.business.headers,
    )
    assert refund.status_code == 201, refund.text
    # The same person by phone only, paying cash later (nothing captured yet), then a no-show.
    cash = await place(client, shop, {"name": "Layla", "phone": "00201001234567"}, 12, days=5)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE bookings SET status = 'no_show' WHERE id = :id"), {"id": cash["id"]}
        )
    listed = await customers(client, shop, q="layla")
    assert len(listed["items"]) == 1 and listed["items"][0]["bookings_count"] == 2
    customer_id = listed["items"][0]["id"]

    response = await client.get(f"/api/v1/customers/{customer_id}", headers=shop.business.headers)
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["customer"]["email"] == "layla@example.com"
    assert [b["id"] for b in detail["bookings"]] == [cash["id"], paid["id"]]  # newest first
    assert detail["no_shows"] == 1
    clearing = await balance(owner_engine, shop.business.tenant_id, "clearing:sandbox")
    assert clearing == PRICE - 5_000
    assert detail["lifetime_value"] == [
        {
            "currency": "EGP",
            "paid_minor": PRICE,
            "refunded_minor": 5_000,
            "net_minor": clearing,
        }
    ]


async def test_staff_reads_customers_and_anonymous_callers_do_not(client: Client) -> None:
    shop = await open_shop(client)
    created = await place(client, shop, PEOPLE[0], 10)
    staff = {"Authorization": f"Bearer {await add_user(client, shop.business, 'staff')}"}
    listed = await client.get("/api/v1/customers", headers=staff)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 1
    one = await client.get(f"/api/v1/customers/{listed.json()['items'][0]['id']}", headers=staff)
    assert one.status_code == 200 and one.json()["bookings"][0]["id"] == created["id"]
    assert (await client.get("/api/v1/customers")).status_code == 401


async def test_another_business_customer_is_a_404_and_invisible_under_rls(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mine = await open_shop(client)
    theirs = await open_shop(client)
    await place(client, theirs, PEOPLE[1], 10)
    their_id = (await customers(client, theirs))["items"][0]["id"]
    missing = await client.get(f"/api/v1/customers/{their_id}", headers=mine.business.headers)
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("not_found") or "not" in missing.json()["title"].lower()
    assert (await customers(client, mine))["items"] == []
    unknown = await client.get(f"/api/v1/customers/{uuid.uuid4()}", headers=mine.business.headers)
    assert unknown.status_code == 404
    # Without the WHERE the service adds: the policy alone hides the other business's row.
    async with sessions() as session, session.begin():
        await set_tenant(session, mine.business.tenant_id)
        seen = await session.scalar(
            text("SELECT count(*) FROM customers WHERE id = :id"), {"id": uuid.UUID(their_id)}
        )
        assert seen == 0
        await set_tenant(session, theirs.business.tenant_id)
        assert await session.scalar(text("SELECT count(*) FROM customers")) == 1


async def test_openapi_documents_the_customer_routes(client: Client) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/customers" in schema["paths"]
    assert "get" in schema["paths"]["/api/v1/customers/{customer_id}"]
    assert "lifetime_value" in schema["components"]["schemas"]["CustomerDetailOut"]["properties"]
    audit = {p["name"] for p in schema["paths"]["/api/v1/audit"]["get"]["parameters"]}
    assert {"actor_kind", "from", "to"} <= audit
