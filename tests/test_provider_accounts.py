"""Whose account a business's money moves through: its own when it saved its keys, the
platform's otherwise. One function decides (app.gateways.accounts.account_for); checkout, fee
fetches, refunds and payouts all go through it, proven here by the API key each request to
Stripe (behind respx, answering with its published fixtures) carries. Reconciliation, route
and nightly job, is proven in tests/reconciliation/test_two_businesses.py."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.gateways.accounts import (
    OwnAccountUnreachable,
    ProviderCredentialsUnreadable,
    Providers,
    account_for,
    account_in,
)
from app.integrations import webhook_signing
from app.integrations.crypto import SecretBox
from app.integrations.kashier import KashierClient
from app.integrations.stripe_client import StripeGateway
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import PermanentError
from app.outbox.models import OutboxEvent
from app.payouts import service as payouts
from app.payouts.models import Payout
from app.settings import Settings
from app.tenant_settings.service import update_provider_settings
from app.worker.deps import JobDeps
from app.worker.jobs import payments as checkout_jobs
from app.worker.jobs.payouts import handle_payout_requested
from tests.checkout.support import PRICE, Client, Shop, book, open_shop, run_outbox
from tests.conftest import STRIPE_WEBHOOK_SECRET
from tests.inbox.support import applied
from tests.integrations.conftest import stripe_fixture
from tests.payouts.helpers import PERIOD, connect_stripe
from tests.reconciliation.world import DAY_START, balance, earn_commission, make_world
from tests.tenant_settings.support import owner_of

API = "https://stripe.test"
KASHIER_API = "https://kashier.test"
PLATFORM_KEY = "sk_test_platform"
OWN_KEY = "sk_test_the_business_own"
OWN_SECRET = "whsec_the_business_own"


@dataclass
class Stripe:
    """Stripe's endpoints the money path calls, each answer recording the key it was sent."""

    router: respx.MockRouter
    keys: dict[str, list[str]] = field(default_factory=dict)
    bodies: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def serve(self, method: str, path: str, body: dict[str, Any]) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            name = f"{method} {path}"
            self.keys.setdefault(name, []).append(request.headers["Authorization"])
            self.bodies.setdefault(name, []).append(dict(parse_qsl(request.content.decode())))
            return httpx.Response(200, json=body)

        self.router.request(method, f"{API}{path}").mock(side_effect=answer)


@dataclass
class Platform:
    providers: Providers
    box: SecretBox
    stripe: Stripe
    http: httpx.AsyncClient

    def deps(self) -> JobDeps:
        return JobDeps(providers=self.providers, public_base_url="https://reckon.test")


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    box = SecretBox(settings.secret_key)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        async with httpx.AsyncClient(timeout=5.0) as http:
            providers = Providers(
                stripe=StripeGateway(PLATFORM_KEY, http, api_base=API),
                kashier=KashierClient(
                    merchant_id="MID-platform",
                    api_key="platform-kashier-key",
                    secret_key="platform-kashier-secret",
                    http=http,
                    api_base=KASHIER_API,
                ),
                http=http,
                stripe_api_base=API,
                kashier_api_base=KASHIER_API,
                secret_box=box,
            )
            yield Platform(providers, box, Stripe(router), http)


async def save(
    sessions: async_sessionmaker[AsyncSession],
    box: SecretBox,
    tenant_id: uuid.UUID,
    credentials: dict[str, dict[str, str | None]],
) -> None:
    async with sessions() as session:
        await update_provider_settings(
            session, owner_of(tenant_id), box, DAY_START, credentials=credentials
        )


# --- the decision itself ---------------------------------------------------------------


async def test_a_business_without_keys_is_served_from_the_platform_account(
    client: Client, sessions: async_sessionmaker[AsyncSession], platform: Platform
) -> None:
    shop = await open_shop(client)
    # A webhook secret alone, or part of a Kashier merchant's keys, is not an account.
    await save(
        sessions,
        platform.box,
        shop.business.tenant_id,
        {"stripe": {"webhook_secret": "whsec_x"}, "kashier": {"api_key": "half"}},
    )

    for provider in ("stripe", "kashier", "sandbox"):
        account = await account_for(sessions, platform.providers, shop.business.tenant_id, provider)
        assert (account.own, account.providers) == (False, platform.providers), provider


async def test_a_business_with_its_own_keys_is_served_from_its_own_account(
    client: Client, sessions: async_sessionmaker[AsyncSession], platform: Platform
) -> None:
    shop = await open_shop(client)
    other = await open_shop(client)
    await save(
        sessions,
        platform.box,
        shop.business.tenant_id,
        {
            "stripe": {"api_key": OWN_KEY},
            "kashier": {"merchant_id": "MID-own", "api_key": "own-key", "secret_key": "own-secret"},
        },
    )
    platform.stripe.serve(
        "GET", "/v1/balance_transactions/txn_1", stripe_fixture("balance_transaction")
    )
    orders = platform.stripe.router.get(f"{KASHIER_API}/v3/payment/orders").respond(
        200, json={"data": [], "pagination": {"totalPages": 1}}
    )

    stripe = await account_for(sessions, platform.providers, shop.business.tenant_id, "stripe")
    kashier = await account_for(sessions, platform.providers, shop.business.tenant_id, "kashier")
    others = await account_for(sessions, platform.providers, other.business.tenant_id, "stripe")
    assert (stripe.own, kashier.own, others.own) == (True, True, False)
    assert stripe.stripe is not None and kashier.kashier is not None and others.stripe is not None
    await stripe.stripe.retrieve_balance_transaction("txn_1")
    await others.stripe.retrieve_balance_transaction("txn_1")
    await kashier.kashier.list_transactions(start=DAY_START, end=DAY_START + timedelta(days=1))

    assert platform.stripe.keys["GET /v1/balance_transactions/txn_1"] == [
        f"Bearer {OWN_KEY}",
        f"Bearer {PLATFORM_KEY}",
    ]
    sent = orders.calls.last.request.headers
    assert (sent["Authorization"], sent["api-key"]) == ("own-secret", "own-key")
    # The business's account is its own only: the platform's clients are untouched.
    assert stripe.kashier is platform.providers.kashier
    assert kashier.stripe is platform.providers.stripe


async def test_keys_that_cannot_be_read_or_reached_are_refused_never_replaced(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    platform: Platform,
    settings: Settings,
) -> None:
    shop = await open_shop(client)
    tenant = shop.business.tenant_id
    await save(sessions, platform.box, tenant, {"stripe": {"api_key": OWN_KEY}})
    rotated = Providers(
        stripe=platform.providers.stripe,
        http=platform.http,
        secret_box=SecretBox("another-deployment-secret-key"),
    )
    no_http = Providers(stripe=platform.providers.stripe, secret_box=platform.box)

    with pytest.raises(ProviderCredentialsUnreadable):
        await account_for(sessions, rotated, tenant, "stripe")
    with pytest.raises(ProviderCredentialsUnreadable):  # no box at all
        await account_for(sessions, Providers(stripe=platform.providers.stripe), tenant, "stripe")
    with pytest.raises(OwnAccountUnreachable):
        await account_for(sessions, no_http, tenant, "stripe")
    with pytest.raises(PermanentError):  # in an outbox handler: the row goes dead, loudly
        await account_in(sessions, rotated, tenant, "stripe")


# --- every money path asks it ----------------------------------------------------------


async def send_paid(client: Client, shop: Shop, booking: dict[str, Any], own: bool) -> None:
    intent = stripe_fixture(
        "payment_intent",
        id="pi_accounts",
        amount=PRICE,
        amount_received=PRICE,
        currency="egp",
        status="succeeded",
        latest_charge="ch_accounts",
        metadata={
            "tenant_id": str(shop.business.tenant_id),
            "booking_id": booking["id"],
            "payment_id": booking["payment"]["id"],
        },
    )
    event = stripe_fixture(
        "event",
        id=f"evt_{uuid.uuid4().hex[:24]}",
        type="payment_intent.succeeded",
        data={"object": intent},
    )
    raw = json.dumps(event).encode()
    secret, path = (
        (OWN_SECRET, f"/webhooks/stripe/{shop.business.tenant_id}")
        if own
        else (STRIPE_WEBHOOK_SECRET, "/webhooks/stripe")
    )
    answer = await applied(
        await client.post(
            path,
            content=raw,
            headers={"Stripe-Signature": webhook_signing.sign(raw, secret, int(time.time()))},
        )
    )
    assert answer.json()["status"] == "processed", answer.text


@pytest.mark.parametrize("own", [False, True], ids=["platform_account", "own_account"])
async def test_checkout_fee_and_refund_use_the_account_of_the_business(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    platform: Platform,
    own: bool,
) -> None:
    shop = await open_shop(client)
    if own:
        await save(
            sessions,
            platform.box,
            shop.business.tenant_id,
            {"stripe": {"api_key": OWN_KEY, "webhook_secret": OWN_SECRET}},
        )
    key = f"Bearer {OWN_KEY if own else PLATFORM_KEY}"
    tenant = str(shop.business.tenant_id)
    booking = await book(client, shop, provider="stripe")
    session = stripe_fixture("checkout.session", id="cs_accounts", payment_intent="pi_accounts")
    txn = stripe_fixture("balance_transaction", id="txn_fee", fee=610, currency="egp")
    charge = stripe_fixture("charge", id="ch_accounts", balance_transaction=txn)
    paid_intent = stripe_fixture(
        "payment_intent",
        id="pi_accounts",
        amount=PRICE,
        amount_received=PRICE,
        currency="egp",
        status="succeeded",
        latest_charge=charge,
    )
    refund = stripe_fixture("refund", id="re_accounts", amount=PRICE, status="succeeded")
    platform.stripe.serve("POST", "/v1/checkout/sessions", session)
    platform.stripe.serve("GET", "/v1/payment_intents/pi_accounts", paid_intent)
    platform.stripe.serve("POST", "/v1/refunds", refund)
    dispatcher = Dispatcher()
    checkout_jobs.register_handlers(dispatcher)

    async def run(topic: str) -> int:
        return await run_outbox(
            owner_engine, sessions, settings, dispatcher, topic, platform.deps()
        )

    assert await run("payment.checkout") == 1
    await send_paid(client, shop, booking, own)
    assert await run("payment.fetch_fee") == 1
    refunded = await client.post(
        f"/api/v1/bookings/{booking['id']}/refunds", headers=shop.business.headers, json={}
    )
    assert refunded.status_code == 201, refunded.text
    assert await run("payment.refund") == 1

    assert platform.stripe.keys == {
        "POST /v1/checkout/sessions": [key],
        "GET /v1/payment_intents/pi_accounts": [key],
        "POST /v1/refunds": [key],
    }
    assert (
        platform.stripe.bodies["POST /v1/checkout/sessions"][0][
            "payment_intent_data[transfer_group]"
        ]
        == f"tenant:{tenant}"
    )
    assert platform.stripe.bodies["POST /v1/refunds"][0]["metadata[tenant_id]"] == tenant
    async with owner_engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT fee_minor, refunded_minor FROM payments WHERE id = :p"),
                {"p": booking["payment"]["id"]},
            )
        ).one()
    assert (row.fee_minor, row.refunded_minor) == (610, PRICE)


async def staff_payout(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    platform: Platform,
    own: bool,
) -> Payout:
    """A business (on its own Stripe account or not) owing a staff member 42.00, paid by
    Stripe Connect: the payout is in transit, its transfer not yet made."""
    shop = await open_shop(client)
    tenant_id = shop.business.tenant_id
    if own:
        await save(sessions, platform.box, tenant_id, {"stripe": {"api_key": OWN_KEY}})
    world = await make_world(owner_engine, tenant_id=tenant_id)
    await connect_stripe(sessions, world, "acct_1Staff")
    await earn_commission(
        sessions, world, world.resource_ids[0], 4_200, at=DAY_START - timedelta(days=3)
    )
    async with sessions() as session:
        (payout,) = (
            await payouts.run_payouts(
                session,
                tenant_id,
                period_start=PERIOD[0],
                period_end=PERIOD[1],
                minimum_minor=1,
                now=DAY_START + timedelta(hours=1),
                actor=audit.SYSTEM,
            )
        ).created
    return payout


async def transfer_payout(
    owner: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    platform: Platform,
    payout: Payout,
) -> None:
    redis = Redis.from_url(settings.redis_url)
    ctx = HandlerContext(
        sessions=sessions,
        redis=redis,
        namespace=settings.redis_namespace,
        worker_id="test",
        deps=platform.deps(),
    )
    try:
        await handle_payout_requested(ctx, await payout_event(owner, payout.id))
    finally:
        await redis.aclose()


@pytest.mark.parametrize("own", [False, True], ids=["platform_account", "own_account"])
async def test_payouts_transfer_from_the_account_of_the_business(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    platform: Platform,
    own: bool,
) -> None:
    payout = await staff_payout(client, owner_engine, sessions, platform, own)
    transfer = stripe_fixture(
        "transfer", id="tr_accounts", amount=4_200, currency="egp", destination="acct_1Staff"
    )
    platform.stripe.serve("POST", "/v1/transfers", transfer)

    await transfer_payout(owner_engine, sessions, settings, platform, payout)

    assert platform.stripe.keys["POST /v1/transfers"] == [
        f"Bearer {OWN_KEY if own else PLATFORM_KEY}"
    ]
    sent = platform.stripe.bodies["POST /v1/transfers"][0]
    assert (sent["metadata[tenant_id]"], sent["metadata[payout_id]"]) == (
        str(payout.tenant_id),
        str(payout.id),
    )
    async with sessions() as session:
        paid = await payouts.get_payout(session, payout.tenant_id, payout.id)
    assert (paid.status, paid.provider_ref) == ("paid", "tr_accounts")


async def test_a_transfer_retry_stripe_refuses_as_changed_is_never_reversed_unseen(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    platform: Platform,
) -> None:
    """A retry whose parameters differ from the first attempt's (a deploy in between added
    the business to the metadata): the first may have paid, so the payout is not failed and
    reversed; the row goes dead for on-call."""
    payout = await staff_payout(client, owner_engine, sessions, platform, own=True)
    message = (
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than 'payout-{payout.id}' if you meant to "
        "execute a different request."
    )
    platform.stripe.router.post(f"{API}/v1/transfers").respond(
        400, json={"error": {"type": "idempotency_error", "message": message}}
    )

    with pytest.raises(PermanentError, match="needs checking"):
        await transfer_payout(owner_engine, sessions, settings, platform, payout)

    async with sessions() as session:
        held = await payouts.get_payout(session, payout.tenant_id, payout.id)
    assert held.status == "in_transit"
    assert await balance(owner_engine, payout.tenant_id, "payouts_in_transit:stripe") == -4_200


async def payout_event(owner: AsyncEngine, payout_id: uuid.UUID) -> OutboxEvent:
    async with owner.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT * FROM outbox WHERE aggregate_id = :id AND topic = 'payout.requested'"
                ),
                {"id": payout_id},
            )
        ).one()
    return OutboxEvent(
        row.tenant_id,
        row.id,
        row.seq,
        row.topic,
        row.aggregate_type,
        row.aggregate_id,
        row.payload,
        row.created_at,
        1,
    )
