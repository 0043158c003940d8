"""A payment whose hosted checkout the provider refuses for good fails visibly: the payment
is `failed` with the provider's reason, the hold is released (the slot can be booked again),
an audit row and a `booking.payment_failed` event tell the owner why, and the outbox row
finishes instead of dying, so the payment's later effects (a refund) go out behind it.

Providers sit behind respx answering with their real error shapes; the outbox rows run
through the real relay and handlers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.gateways.accounts import Providers
from app.integrations import webhook_signing
from app.integrations.crypto import SecretBox
from app.integrations.kashier import KashierClient
from app.integrations.stripe_client import StripeGateway
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.relay import Relay, RelayConfig
from app.settings import Settings
from app.worker.deps import JobDeps
from app.worker.jobs import payments as checkout_jobs
from tests.checkout.support import PRICE, Client, Shop, balance, book, get_booking, open_shop
from tests.conftest import STRIPE_WEBHOOK_SECRET
from tests.inbox.support import applied
from tests.integrations.conftest import stripe_fixture

STRIPE = "https://stripe.test"
KASHIER = "https://kashier.test"
RELAY = RelayConfig(lease_seconds=10, max_attempts=5, backoff_base=0.01, backoff_cap=0.02)
# The payment path's own rows run for real; every other event counts as sent.
RUN = ("payment.checkout", "payment.refund")

# Stripe's answers, as Stripe sends them.
INVALID_KEY = httpx.Response(
    401,
    json={
        "error": {
            "message": "Invalid API Key provided: sk_test_****oops",
            "type": "invalid_request_error",
        }
    },
    headers={"Request-Id": "req_invalid_key"},
)
INVALID_PARAM = httpx.Response(
    400,
    json={
        "error": {
            "code": "parameter_invalid_integer",
            "doc_url": "https://stripe.com/docs/error-codes/parameter-invalid-integer",
            "message": "Invalid integer: -20000",
            "param": "line_items[0][price_data][unit_amount]",
            "request_log_url": "https://dashboard.stripe.com/test/logs/req_invalid_param",
            "type": "invalid_request_error",
        }
    },
    headers={"Request-Id": "req_invalid_param", "Stripe-Should-Retry": "false"},
)


@dataclass
class World:
    shop: Shop
    booking: dict[str, Any]
    relay: Relay
    router: respx.MockRouter

    @property
    def payment_id(self) -> str:
        return str(self.booking["payment"]["id"])


async def make_world(
    client: Client,
    app_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    provider: str,
) -> AsyncIterator[World]:
    shop = await open_shop(client)
    booking = await book(client, shop, provider=provider)
    redis = Redis.from_url(settings.redis_url)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        async with httpx.AsyncClient(timeout=5.0) as http:
            dispatcher = Dispatcher()
            checkout_jobs.register_handlers(dispatcher)
            platform = Providers(
                stripe=StripeGateway("sk_test_platform", http, api_base=STRIPE),
                kashier=KashierClient(
                    merchant_id="MID-1-1", api_key="k", secret_key="s", http=http, api_base=KASHIER
                ),
                http=http,
                secret_box=SecretBox(settings.secret_key),
            )
            ctx = HandlerContext(
                sessions=sessions,
                redis=redis,
                namespace=settings.redis_namespace,
                worker_id="test-relay",
                deps=JobDeps(providers=platform, public_base_url="https://reckon.test"),
            )
            relay = Relay(app_engine, dispatcher, ctx, config=RELAY, seed=1)
            try:
                yield World(shop, booking, relay, router)
            finally:
                await relay.close()
                await redis.aclose()


@pytest.fixture
async def stripe_world(
    client: Client,
    app_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> AsyncIterator[World]:
    async for world in make_world(client, app_engine, sessions, settings, "stripe"):
        yield world


@pytest.fixture
async def kashier_world(
    client: Client,
    app_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> AsyncIterator[World]:
    async for world in make_world(client, app_engine, sessions, settings, "kashier"):
        yield world


async def relay_round(owner: AsyncEngine, w: World) -> None:
    """The relay over what is due, as if every retry delay had passed."""
    async with owner.begin() as connection:
        await connection.execute(
            text(
                "UPDATE outbox SET status = 'delivered', delivered_at = now() "
                "WHERE status = 'pending' AND NOT (topic = ANY(:run))"
            ),
            {"run": list(RUN)},
        )
        await connection.execute(
            text("UPDATE outbox SET available_at = now() WHERE status = 'pending'")
        )
        if await connection.scalar(text("SELECT to_regclass('outbox_deliveries') IS NOT NULL")):
            await connection.execute(
                text("UPDATE outbox_deliveries SET available_at = now() WHERE status = 'pending'")
            )
    await w.relay.run_once()


async def one(owner: AsyncEngine, sql: str, **params: Any) -> Any:
    async with owner.connect() as connection:
        return (await connection.execute(text(sql), params)).one()


async def outbox_rows(owner: AsyncEngine, payment_id: str, topic: str) -> list[Any]:
    async with owner.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT status, attempts, payload FROM outbox WHERE topic = :topic "
                "AND payload->>'payment_id' = :p ORDER BY seq"
            ),
            {"topic": topic, "p": payment_id},
        )
        return list(rows.all())


async def assert_failed_visibly(
    client: Client, owner: AsyncEngine, w: World, reason_has: str
) -> None:
    tenant = w.shop.business.tenant_id
    payment = await one(
        owner,
        "SELECT status, failure_reason, checkout_url FROM payments WHERE id = :p",
        p=w.payment_id,
    )
    assert (payment.status, payment.checkout_url) == ("failed", None)
    assert reason_has in payment.failure_reason
    assert (await get_booking(client, w.shop, w.booking["id"]))["status"] == "expired"
    # The unpaid hold is released in the books too.
    assert await balance(owner, tenant, "receivable:customer") == 0
    assert await balance(owner, tenant, "deferred_revenue") == 0
    # The checkout row is done, not dead: nothing is left to retry and nothing waits on it.
    (checkout_row,) = await outbox_rows(owner, w.payment_id, "payment.checkout")
    assert (checkout_row.status, checkout_row.attempts) == ("delivered", 1)
    audit = await one(
        owner,
        "SELECT actor_kind, after FROM audit_log WHERE action = 'payment.checkout_failed' "
        "AND entity_id = :p",
        p=w.payment_id,
    )
    assert audit.actor_kind == "provider"
    assert audit.after["status"] == "failed" and reason_has in audit.after["reason"]
    assert audit.after["released_bookings"] == [w.booking["id"]]
    (told,) = await outbox_rows(owner, w.payment_id, "booking.payment_failed")
    assert told.payload["booking_id"] == w.booking["id"]
    assert told.payload["status"] == "expired" and reason_has in told.payload["reason"]
    assert len(await outbox_rows_by_booking(owner, w.booking["id"], "booking.expired")) == 1


async def outbox_rows_by_booking(owner: AsyncEngine, booking_id: str, topic: str) -> list[Any]:
    async with owner.connect() as connection:
        rows = await connection.execute(
            text("SELECT status FROM outbox WHERE topic = :t AND aggregate_id = :b"),
            {"t": topic, "b": booking_id},
        )
        return list(rows.all())


@pytest.mark.parametrize(
    ("answer", "reason_has"),
    [(INVALID_KEY, "Invalid API Key provided"), (INVALID_PARAM, "Invalid integer: -20000")],
    ids=["invalid_api_key_401", "invalid_param_400"],
)
async def test_stripe_refusing_the_checkout_fails_the_payment_and_frees_the_slot(
    client: Client,
    owner_engine: AsyncEngine,
    stripe_world: World,
    answer: httpx.Response,
    reason_has: str,
) -> None:
    w = stripe_world
    route = w.router.post(f"{STRIPE}/v1/checkout/sessions").mock(return_value=answer)

    await relay_round(owner_engine, w)
    await relay_round(owner_engine, w)

    assert route.call_count == 1  # refused for good: never asked again
    await assert_failed_visibly(client, owner_engine, w, reason_has)
    again = await book(client, w.shop, provider="stripe")  # the same slot, free again
    assert again["start"] == w.booking["start"]


async def test_kashier_refusing_the_session_fails_the_payment_visibly(
    client: Client, owner_engine: AsyncEngine, kashier_world: World
) -> None:
    w = kashier_world
    route = w.router.post(f"{KASHIER}/v3/payment/sessions").respond(
        401, json={"message": "Invalid merchant credentials"}
    )

    await relay_round(owner_engine, w)

    assert route.call_count == 1
    await assert_failed_visibly(client, owner_engine, w, "Invalid merchant credentials")


async def test_a_transient_failure_keeps_the_hold_and_retries(
    client: Client, owner_engine: AsyncEngine, stripe_world: World
) -> None:
    w = stripe_world
    route = w.router.post(f"{STRIPE}/v1/checkout/sessions")
    route.respond(500, json={"error": {"type": "api_error", "message": "Stripe is down"}})

    await relay_round(owner_engine, w)

    payment = await one(owner_engine, "SELECT status FROM payments WHERE id = :p", p=w.payment_id)
    assert payment.status == "requires_payment"
    assert (await get_booking(client, w.shop, w.booking["id"]))["status"] == "pending_payment"
    (checkout_row,) = await outbox_rows(owner_engine, w.payment_id, "payment.checkout")
    assert checkout_row.status == "pending"
    assert await outbox_rows(owner_engine, w.payment_id, "booking.payment_failed") == []

    session = stripe_fixture("checkout.session", id="cs_later", url="https://checkout.test/cs")
    route.respond(200, json=session)
    await relay_round(owner_engine, w)
    assert route.call_count == 2
    assert (await get_booking(client, w.shop, w.booking["id"]))["payment"]["checkout_url"] == (
        "https://checkout.test/cs"
    )


async def test_money_arriving_after_a_refused_checkout_is_refunded_without_waiting(
    client: Client, owner_engine: AsyncEngine, stripe_world: World
) -> None:
    w = stripe_world
    w.router.post(f"{STRIPE}/v1/checkout/sessions").mock(return_value=INVALID_KEY)
    refunds = w.router.post(f"{STRIPE}/v1/refunds").respond(
        200,
        json=stripe_fixture(
            "refund", id="re_late", amount=PRICE, currency="egp", status="succeeded"
        ),
    )
    await relay_round(owner_engine, w)

    # Stripe reports money for this payment anyway (an earlier page, a retried session).
    tenant = str(w.shop.business.tenant_id)
    intent = stripe_fixture(
        "payment_intent",
        id="pi_late",
        amount=PRICE,
        amount_received=PRICE,
        currency="egp",
        status="succeeded",
        latest_charge="ch_late",
        metadata={"tenant_id": tenant, "booking_id": w.booking["id"], "payment_id": w.payment_id},
    )
    event = stripe_fixture(
        "event",
        id=f"evt_{uuid.uuid4().hex[:24]}",
        type="payment_intent.succeeded",
        data={"object": intent},
    )
    raw = json.dumps(event).encode()
    answer = await applied(
        await client.post(
            "/webhooks/stripe",
            content=raw,
            headers={
                "Stripe-Signature": webhook_signing.sign(
                    raw, STRIPE_WEBHOOK_SECRET, int(time.time())
                ),
                "content-type": "application/json",
            },
        )
    )
    assert answer.json()["detail"] == "refunded: booking no longer held", answer.text
    await relay_round(owner_engine, w)

    assert refunds.call_count == 1
    sent = dict(parse_qsl(refunds.calls.last.request.content.decode()))
    assert sent["payment_intent"] == "pi_late"
    assert sent["metadata[tenant_id]"] == tenant
    (refund_row,) = await outbox_rows(owner_engine, w.payment_id, "payment.refund")
    assert refund_row.status == "delivered"
    refund = await one(owner_engine, "SELECT status, provider_ref FROM refunds")
    assert (refund.status, refund.provider_ref) == ("succeeded", "re_late")
    assert await balance(owner_engine, w.shop.business.tenant_id, "clearing:stripe") == 0
