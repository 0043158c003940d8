"""The sandbox page's Pay/Decline buttons speak for the sandbox provider only: pressed on a
Stripe, Kashier or cash payment's address they refuse and change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.checkout.support import PRICE, Client, balance, book, count, get_booking, open_shop


@pytest.mark.parametrize("provider", ["stripe", "kashier", "cash"])
async def test_sandbox_pay_refuses_a_payment_of_another_provider_and_changes_nothing(
    client: Client, owner_engine: AsyncEngine, provider: str
) -> None:
    shop = await open_shop(client)
    created = await book(client, shop, provider=provider)
    before = await get_booking(client, shop, created["id"])
    tenant = shop.business.tenant_id
    base = f"/sandbox/pay/{tenant}/{created['payment']['id']}"

    for action in ("pay", "decline"):
        response = await client.post(f"{base}/{action}", follow_redirects=False)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "not_found"

    after = await get_booking(client, shop, created["id"])
    assert (after["status"], after["payment"]["status"]) == (
        before["status"],
        before["payment"]["status"],
    )
    assert await count(owner_engine, "SELECT count(*) FROM inbox") == 0
    assert await balance(owner_engine, tenant, f"clearing:{provider}") == 0
    assert await balance(owner_engine, tenant, "clearing:sandbox") == 0


async def test_sandbox_pay_still_captures_a_sandbox_payment(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop = await open_shop(client)
    created = await book(client, shop, provider="sandbox")
    tenant = shop.business.tenant_id

    response = await client.post(
        f"/sandbox/pay/{tenant}/{created['payment']['id']}/pay", follow_redirects=False
    )

    assert response.status_code == 303, response.text
    assert (await get_booking(client, shop, created["id"]))["status"] == "confirmed"
    assert await balance(owner_engine, tenant, "clearing:sandbox") == PRICE
