"""A business with its own Stripe account has its own webhook endpoint, verified with its
own secret and bound to it; the platform's endpoint takes the platform account's events.

Events are Stripe's published fixtures with our ids in the metadata, signed as Stripe signs
them (app.integrations.webhook_signing.sign)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.integrations import webhook_signing
from app.settings import Settings
from tests.checkout.support import PRICE, Client, Shop, balance, book, count, get_booking, open_shop
from tests.conftest import STRIPE_WEBHOOK_SECRET
from tests.inbox.support import applied
from tests.integrations.conftest import stripe_fixture

OWN_KEY = "sk_test_business_own_account"
OWN_SECRET = "whsec_business_own_account"


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return stripe_fixture(
        "event", id=f"evt_{uuid.uuid4().hex[:24]}", type=kind, data={"object": obj}
    )


def paid(
    shop: Shop, booking: dict[str, Any], intent_id: str | None = None, **metadata: str
) -> dict[str, Any]:
    intent = stripe_fixture(
        "payment_intent",
        id=intent_id or "pi_" + uuid.uuid4().hex[:20],
        amount=PRICE,
        amount_received=PRICE,
        currency="egp",
        status="succeeded",
        latest_charge="ch_" + uuid.uuid4().hex[:20],
        metadata={
            "tenant_id": str(shop.business.tenant_id),
            "booking_id": booking["id"],
            "payment_id": booking["payment"]["id"],
            **metadata,
        },
    )
    return event("payment_intent.succeeded", intent)


def disputed(payment_intent: str) -> dict[str, Any]:
    """A dispute names the payment only by Stripe's references: no metadata of ours."""
    dispute = stripe_fixture(
        "dispute",
        id="dp_" + uuid.uuid4().hex[:20],
        amount=PRICE,
        currency="egp",
        charge="ch_" + uuid.uuid4().hex[:20],
        payment_intent=payment_intent,
        metadata={},
    )
    return event("charge.dispute.created", dispute)


async def send(client: Client, body: dict[str, Any], *, secret: str, path: str) -> Any:
    raw = json.dumps(body).encode()
    response = await client.post(
        path,
        content=raw,
        headers={
            "Stripe-Signature": webhook_signing.sign(raw, secret, int(time.time())),
            "content-type": "application/json",
        },
    )
    return await applied(response)


def own_endpoint(shop: Shop) -> str:
    return f"/webhooks/stripe/{shop.business.tenant_id}"


async def own_account_shop(client: Client, **credentials: str | None) -> Shop:
    shop = await open_shop(client)
    saved = await client.put(
        "/api/v1/settings/providers",
        headers=shop.business.headers,
        json={
            "credentials": {
                "stripe": {"api_key": OWN_KEY, "webhook_secret": OWN_SECRET, **credentials}
            }
        },
    )
    assert saved.status_code == 200, saved.text
    return shop


async def set_intent(owner: AsyncEngine, booking: dict[str, Any], intent: str) -> None:
    """As the checkout handler records it once Stripe opened the page."""
    async with owner.begin() as connection:
        await connection.execute(
            text("UPDATE payments SET provider_ref = :r WHERE id = :p"),
            {"r": intent, "p": booking["payment"]["id"]},
        )


async def inbox_owners(owner: AsyncEngine) -> list[tuple[str, Any, str]]:
    async with owner.connect() as connection:
        rows = await connection.execute(
            text("SELECT event_id, owner_tenant_id, outcome FROM inbox ORDER BY received_at")
        )
        return [(r.event_id, r.owner_tenant_id, r.outcome) for r in rows]


async def test_each_business_is_paid_through_its_own_accounts_signed_round_trip(
    client: Client, owner_engine: AsyncEngine
) -> None:
    platform_shop = await open_shop(client)
    own_shop = await own_account_shop(client)
    platform_booking = await book(client, platform_shop, provider="stripe")
    own_booking = await book(client, own_shop, provider="stripe")
    on_platform, on_own = paid(platform_shop, platform_booking), paid(own_shop, own_booking)

    first = await send(client, on_platform, secret=STRIPE_WEBHOOK_SECRET, path="/webhooks/stripe")
    second = await send(client, on_own, secret=OWN_SECRET, path=own_endpoint(own_shop))

    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["status"] == second.json()["status"] == "processed"
    for shop, booking in ((platform_shop, platform_booking), (own_shop, own_booking)):
        assert (await get_booking(client, shop, booking["id"]))["status"] == "confirmed"
        assert await balance(owner_engine, shop.business.tenant_id, "clearing:stripe") == PRICE
    assert await inbox_owners(owner_engine) == [
        (on_platform["id"], platform_shop.business.tenant_id, "processed"),
        (on_own["id"], own_shop.business.tenant_id, "processed"),
    ]


async def test_the_business_endpoint_takes_only_the_business_secret_and_the_platform_refuses(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop = await own_account_shop(client)
    booking = await book(client, shop, provider="stripe")
    succeeded = paid(shop, booking)
    await set_intent(owner_engine, booking, "pi_own_account_1")

    platform_signed = await send(
        client, succeeded, secret=STRIPE_WEBHOOK_SECRET, path=own_endpoint(shop)
    )
    at_platform = await send(
        client, succeeded, secret=STRIPE_WEBHOOK_SECRET, path="/webhooks/stripe"
    )
    by_reference = await send(
        client, disputed("pi_own_account_1"), secret=STRIPE_WEBHOOK_SECRET, path="/webhooks/stripe"
    )
    own_signed_at_platform = await send(
        client, succeeded, secret=OWN_SECRET, path="/webhooks/stripe"
    )

    assert platform_signed.status_code == 400, platform_signed.text
    assert platform_signed.json()["type"] == "invalid_signature"
    for refused in (at_platform, by_reference):
        assert refused.status_code == 400, refused.text
        assert refused.json()["type"] == "wrong_webhook_endpoint"
        assert refused.json()["endpoint"] == own_endpoint(shop)
    assert own_signed_at_platform.status_code == 400
    assert own_signed_at_platform.json()["type"] == "invalid_signature"
    assert await count(owner_engine, "SELECT count(*) FROM inbox") == 0
    assert (await get_booking(client, shop, booking["id"]))["status"] == "pending_payment"
    assert await balance(owner_engine, shop.business.tenant_id, "clearing:stripe") == 0
    assert await balance(owner_engine, shop.business.tenant_id, "expense:disputes:stripe") == 0


async def test_an_event_at_a_business_endpoint_never_moves_another_business_payment(
    client: Client, owner_engine: AsyncEngine
) -> None:
    platform_shop = await open_shop(client)
    own_shop = await own_account_shop(client)
    victim = await book(client, platform_shop, provider="stripe")
    await set_intent(owner_engine, victim, "pi_platform_victim")
    endpoint = own_endpoint(own_shop)

    by_metadata = await send(client, paid(platform_shop, victim), secret=OWN_SECRET, path=endpoint)
    # Claiming to be the business itself while naming the other business's payment.
    claimed = paid(platform_shop, victim, tenant_id=str(own_shop.business.tenant_id))
    by_claim = await send(client, claimed, secret=OWN_SECRET, path=endpoint)
    by_reference = await send(
        client, disputed("pi_platform_victim"), secret=OWN_SECRET, path=endpoint
    )

    for answer in (by_metadata, by_claim, by_reference):
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "rejected"
    tenant = platform_shop.business.tenant_id
    assert (await get_booking(client, platform_shop, victim["id"]))["status"] == "pending_payment"
    assert await balance(owner_engine, tenant, "clearing:stripe") == 0
    assert await balance(owner_engine, tenant, "expense:disputes:stripe") == 0
    # The same events from the platform's account, where that payment lives, do apply.
    capture = await send(
        client,
        paid(platform_shop, victim, "pi_platform_victim"),
        secret=STRIPE_WEBHOOK_SECRET,
        path="/webhooks/stripe",
    )
    dispute = await send(
        client,
        disputed("pi_platform_victim"),
        secret=STRIPE_WEBHOOK_SECRET,
        path="/webhooks/stripe",
    )
    assert capture.json()["status"] == dispute.json()["status"] == "processed"
    assert (await get_booking(client, platform_shop, victim["id"]))["status"] == "confirmed"
    assert await balance(owner_engine, tenant, "expense:disputes:stripe") == PRICE


async def test_a_business_without_its_own_webhook_secret_has_no_endpoint(
    client: Client, owner_engine: AsyncEngine
) -> None:
    platform_shop = await open_shop(client)
    key_only = await own_account_shop(client, webhook_secret=None)
    booking = await book(client, platform_shop, provider="stripe")
    succeeded = paid(platform_shop, booking)

    answers = [
        await send(client, succeeded, secret=secret, path=path)
        for secret in (STRIPE_WEBHOOK_SECRET, OWN_SECRET)
        for path in (
            own_endpoint(platform_shop),
            own_endpoint(key_only),
            f"/webhooks/stripe/{uuid.uuid4()}",
        )
    ]

    assert [a.status_code for a in answers] == [404] * 6
    assert {a.json()["type"] for a in answers} == {"webhook_endpoint_not_found"}
    assert await count(owner_engine, "SELECT count(*) FROM inbox") == 0
    assert (await get_booking(client, platform_shop, booking["id"]))["status"] == "pending_payment"


async def test_provider_settings_show_the_endpoint_a_business_own_account_must_call(
    client: Client, settings: Settings
) -> None:
    platform_shop = await open_shop(client)
    own_shop = await own_account_shop(client)

    def stripe_of(body: dict[str, Any]) -> dict[str, Any]:
        return next(p for p in body["providers"] if p["provider"] == "stripe")

    own = (await client.get("/api/v1/settings/providers", headers=own_shop.business.headers)).json()
    other = (
        await client.get("/api/v1/settings/providers", headers=platform_shop.business.headers)
    ).json()

    base = settings.public_base_url.rstrip("/")
    assert stripe_of(own)["webhook_url"] == f"{base}{own_endpoint(own_shop)}"
    assert stripe_of(own)["fields_set"] == ["api_key", "webhook_secret"]
    assert OWN_KEY not in json.dumps(own) and OWN_SECRET not in json.dumps(own)
    assert "webhook_url" not in stripe_of(other)
    assert all("webhook_url" not in p for p in own["providers"] if p["provider"] != "stripe")
