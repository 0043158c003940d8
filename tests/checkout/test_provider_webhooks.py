"""Stripe and Kashier webhooks: signatures, duplicates, events out of order, amount checks.

Events are built from Stripe's published fixtures (tests/fixtures/stripe) with our ids in
the metadata, signed as Stripe signs them."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.integrations import kashier, webhook_signing
from tests.checkout.support import (
    PRICE,
    Client,
    Shop,
    balance,
    book,
    count,
    get_booking,
    open_shop,
    unbalanced_entries,
)
from tests.conftest import KASHIER_API_KEY, STRIPE_WEBHOOK_SECRET
from tests.inbox.support import applied
from tests.integrations.conftest import stripe_fixture


def stripe_event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return stripe_fixture(
        "event", id=f"evt_{uuid.uuid4().hex[:24]}", type=kind, data={"object": obj}
    )


def metadata(shop: Shop, booking: dict[str, Any]) -> dict[str, str]:
    return {
        "tenant_id": str(shop.business.tenant_id),
        "booking_id": booking["id"],
        "payment_id": booking["payment"]["id"],
    }


def intent_succeeded(shop: Shop, booking: dict[str, Any], amount: int = PRICE) -> dict[str, Any]:
    intent = stripe_fixture(
        "payment_intent",
        id="pi_" + uuid.uuid4().hex[:20],
        amount=amount,
        amount_received=amount,
        currency="egp",
        status="succeeded",
        latest_charge="ch_" + uuid.uuid4().hex[:20],
        metadata=metadata(shop, booking),
    )
    return stripe_event("payment_intent.succeeded", intent)


async def send_stripe(
    client: Client,
    event: dict[str, Any],
    *,
    secret: str = STRIPE_WEBHOOK_SECRET,
    at: int | None = None,
) -> Any:
    raw = json.dumps(event).encode()
    header = webhook_signing.sign(raw, secret, at or int(time.time()))
    response = await client.post(
        "/webhooks/stripe",
        content=raw,
        headers={"Stripe-Signature": header, "content-type": "application/json"},
    )
    return await applied(response)


async def stripe_booking(client: Client) -> tuple[Shop, dict[str, Any]]:
    shop = await open_shop(client)
    return shop, await book(client, shop, provider="stripe")


async def test_valid_stripe_event_confirms_once_even_delivered_five_times(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop, booking = await stripe_booking(client)
    event = intent_succeeded(shop, booking)
    results = [(await send_stripe(client, event)).json()["status"] for _ in range(5)]
    assert results == ["processed", "duplicate", "duplicate", "duplicate", "duplicate"]
    assert (await get_booking(client, shop, booking["id"]))["status"] == "confirmed"
    assert await balance(owner_engine, shop.business.tenant_id, "clearing:stripe") == PRICE
    assert (
        await count(owner_engine, "SELECT count(*) FROM outbox WHERE topic = 'payment.fetch_fee'")
        == 1
    )


async def test_bad_or_stale_stripe_signature_is_400_and_nothing_is_stored(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop, booking = await stripe_booking(client)
    event = intent_succeeded(shop, booking)
    stale = await send_stripe(client, event, at=int(time.time()) - 301)
    forged = await send_stripe(client, event, secret="whsec_someone_else")
    unsigned = await client.post("/webhooks/stripe", content=json.dumps(event).encode())
    for response in (stale, forged, unsigned):
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "invalid_signature"
    assert await count(owner_engine, "SELECT count(*) FROM inbox") == 0
    assert (await get_booking(client, shop, booking["id"]))["status"] == "pending_payment"


async def test_refund_reported_before_the_capture_keeps_the_books_right(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop, booking = await stripe_booking(client)
    succeeded = intent_succeeded(shop, booking)
    intent = succeeded["data"]["object"]
    refund = stripe_fixture(
        "refund",
        id="re_" + uuid.uuid4().hex[:20],
        amount=5_000,
        status="succeeded",
        metadata={},
        payment_intent=intent["id"],
    )
    charge = stripe_fixture(
        "charge",
        id=intent["latest_charge"],
        amount=PRICE,
        amount_captured=PRICE,
        amount_refunded=5_000,
        currency="egp",
        payment_intent=intent["id"],
        metadata=metadata(shop, booking),
        refunds={"object": "list", "data": [refund], "has_more": False},
    )
    first = await send_stripe(client, stripe_event("charge.refunded", charge))
    assert first.json()["status"] == "processed", first.text
    late = await send_stripe(client, succeeded)
    assert late.json()["status"] == "processed"
    tenant = shop.business.tenant_id
    assert await balance(owner_engine, tenant, "clearing:stripe") == PRICE - 5_000
    assert await balance(owner_engine, tenant, "receivable:customer") == 0
    assert (
        await count(
            owner_engine,
            "SELECT count(*) FROM journal_entries WHERE idempotency_key LIKE :k",
            k="payment:%:captured",
        )
        == 1
    )
    again = await send_stripe(client, stripe_event("charge.refunded", charge))
    assert again.json()["status"] == "processed"
    assert await count(owner_engine, "SELECT count(*) FROM refunds") == 1
    assert await unbalanced_entries(owner_engine) == 0


async def test_success_after_the_checkout_expired_refunds_the_customer_in_full(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop, booking = await stripe_booking(client)
    session = stripe_fixture(
        "checkout.session",
        id="cs_" + uuid.uuid4().hex[:20],
        payment_intent=None,
        status="expired",
        metadata=metadata(shop, booking),
    )
    expired = await send_stripe(client, stripe_event("checkout.session.expired", session))
    assert expired.json()["status"] == "processed"
    assert (await get_booking(client, shop, booking["id"]))["status"] == "expired"
    late = await send_stripe(client, intent_succeeded(shop, booking))
    assert late.json()["detail"] == "refunded: booking no longer held"
    tenant = shop.business.tenant_id
    assert (
        await count(owner_engine, "SELECT count(*) FROM refunds WHERE amount_minor = :a", a=PRICE)
        == 1
    )
    assert (
        await count(owner_engine, "SELECT count(*) FROM outbox WHERE topic = 'payment.refund'") == 1
    )
    assert await balance(owner_engine, tenant, "receivable:customer") == 0
    assert await balance(owner_engine, tenant, "deferred_revenue") == 0
    assert await balance(owner_engine, tenant, "clearing:stripe") == 0
    assert (await get_booking(client, shop, booking["id"]))["status"] == "expired"


async def test_dispute_is_booked_and_unknown_events_are_stored_and_acknowledged(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop, booking = await stripe_booking(client)
    succeeded = intent_succeeded(shop, booking)
    await send_stripe(client, succeeded)
    intent = succeeded["data"]["object"]
    dispute = stripe_fixture(
        "dispute",
        id="dp_" + uuid.uuid4().hex[:20],
        amount=PRICE,
        currency="egp",
        charge=intent["latest_charge"],
        payment_intent=intent["id"],
        metadata={},
    )
    booked = await send_stripe(client, stripe_event("charge.dispute.created", dispute))
    assert booked.json()["status"] == "processed", booked.text
    tenant = shop.business.tenant_id
    assert await balance(owner_engine, tenant, "expense:disputes:stripe") == PRICE
    assert await balance(owner_engine, tenant, "clearing:stripe") == 0
    unknown = await send_stripe(
        client, stripe_event("customer.created", stripe_fixture("customer"))
    )
    assert unknown.status_code == 200
    assert unknown.json()["status"] == "ignored"
    assert (
        await count(
            owner_engine, "SELECT count(*) FROM inbox WHERE event_type = 'customer.created'"
        )
        == 1
    )


def kashier_payload(payment_id: str, amount: str, status: str = "SUCCESS") -> dict[str, Any]:
    data = {
        "merchantOrderId": payment_id,
        "orderId": "ks-" + payment_id[:8],
        "transactionId": "TX-" + uuid.uuid4().hex[:10],
        "amount": amount,
        "currency": "EGP",
        "status": status,
        "method": "card",
        "signatureKeys": [
            "amount",
            "currency",
            "merchantOrderId",
            "orderId",
            "status",
            "transactionId",
        ],
    }
    return {"event": "pay", "data": data}


async def send_kashier(client: Client, payload: dict[str, Any], key: str = KASHIER_API_KEY) -> Any:
    signature = kashier.sign_webhook_data(payload["data"], key)
    response = await client.post(
        "/webhooks/kashier",
        content=json.dumps(payload).encode(),
        headers={kashier.SIGNATURE_HEADER: signature, "content-type": "application/json"},
    )
    return await applied(response)


async def test_kashier_payment_is_verified_captured_and_replays_are_caught(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop = await open_shop(client)
    booking = await book(client, shop, provider="kashier")
    payload = kashier_payload(booking["payment"]["id"], f"{PRICE / 100:.2f}")
    first = await send_kashier(client, payload)
    assert first.json()["status"] == "processed", first.text
    replay = await send_kashier(client, payload)
    assert replay.json()["status"] == "duplicate"
    assert (await get_booking(client, shop, booking["id"]))["status"] == "confirmed"
    assert await balance(owner_engine, shop.business.tenant_id, "clearing:kashier") == PRICE


async def test_kashier_amount_mismatch_is_rejected_logged_and_changes_nothing(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop = await open_shop(client)
    booking = await book(client, shop, provider="kashier")
    payload = kashier_payload(booking["payment"]["id"], "1.00")
    response = await send_kashier(client, payload)
    assert response.status_code == 200
    assert response.json() == {"status": "rejected", "detail": "payment_amount_mismatch"}
    assert (await get_booking(client, shop, booking["id"]))["status"] == "pending_payment"
    assert await balance(owner_engine, shop.business.tenant_id, "clearing:kashier") == 0
    assert (
        await count(owner_engine, "SELECT count(*) FROM inbox WHERE outcome LIKE :o", o="rejected%")
        == 1
    )


async def test_kashier_bad_signature_is_400(client: Client, owner_engine: AsyncEngine) -> None:
    shop = await open_shop(client)
    booking = await book(client, shop, provider="kashier")
    payload = kashier_payload(booking["payment"]["id"], f"{PRICE / 100:.2f}")
    response = await send_kashier(client, payload, key="wrong-key")
    assert response.status_code == 400
    assert await count(owner_engine, "SELECT count(*) FROM inbox") == 0


async def test_kashier_webhook_is_verified_with_the_business_own_api_key(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop = await open_shop(client)
    saved = await client.put(
        "/api/v1/settings/providers",
        headers=shop.business.headers,
        json={
            "credentials": {
                "kashier": {
                    "merchant_id": "MID-1234",
                    "api_key": "tenant-key",
                    "secret_key": "tenant-secret",
                }
            }
        },
    )
    assert saved.status_code == 200, saved.text
    booking = await book(client, shop, provider="kashier")
    payload = kashier_payload(booking["payment"]["id"], f"{PRICE / 100:.2f}")
    platform_signed = await send_kashier(client, payload)
    assert platform_signed.status_code == 400
    tenant_signed = await send_kashier(client, payload, key="tenant-key")
    assert tenant_signed.json()["status"] == "processed", tenant_signed.text
    assert (await get_booking(client, shop, booking["id"]))["status"] == "confirmed"


async def test_an_event_signed_by_one_provider_never_moves_another_providers_payment(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop = await open_shop(client)
    booking = await book(client, shop, provider="sandbox")
    answer = await send_stripe(client, intent_succeeded(shop, booking))
    assert answer.status_code == 200
    assert answer.json()["status"] == "rejected"
    assert (await get_booking(client, shop, booking["id"]))["status"] == "pending_payment"
    assert await balance(owner_engine, shop.business.tenant_id, "clearing:stripe") == 0
    assert await balance(owner_engine, shop.business.tenant_id, "clearing:sandbox") == 0
