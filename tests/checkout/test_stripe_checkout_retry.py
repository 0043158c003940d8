"""Stripe Checkout Session creation retried by the outbox: the same Idempotency-Key must
carry byte-identical parameters, or Stripe refuses the retry and the row dies. Every
parameter, expires_at included, comes from stored rows; the handler's clock is moved
between attempts to prove it plays no part. Stripe sits behind respx with its published
checkout.session fixture."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.bookings.checkout_window import CheckoutWindow
from app.gateways.accounts import Providers
from app.integrations.crypto import SecretBox
from app.integrations.stripe_client import StripeGateway
from app.mail.confirmation import MailSetup
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.relay import Relay, RelayConfig
from app.presentation.links import ManageLinks
from app.settings import Settings
from app.worker.deps import JobDeps
from app.worker.jobs import payments as checkout_jobs
from tests.checkout.support import Client, book, open_shop, relay_due
from tests.integrations.conftest import stripe_fixture

API = "https://stripe.test"
RELAY = RelayConfig(lease_seconds=10, max_attempts=5, backoff_base=0.01, backoff_cap=0.02)


@dataclass
class World:
    payment_id: str
    booking_id: str
    slug: str
    created_at: datetime
    hold_expires_at: datetime
    relay: Relay
    route: respx.Route
    clock: list[datetime]
    sent: list[httpx.Request] = field(default_factory=list)


@pytest.fixture
async def world(
    client: Client,
    app_engine: AsyncEngine,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> AsyncIterator[World]:
    shop = await open_shop(client)
    created = await book(client, shop, provider="stripe")
    payment_id = created["payment"]["id"]
    async with owner_engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT p.created_at, b.hold_expires_at FROM payments p JOIN bookings b "
                    "ON b.tenant_id = p.tenant_id AND b.id = p.booking_id WHERE p.id = :p"
                ),
                {"p": payment_id},
            )
        ).one()
    clock = [row.created_at + timedelta(seconds=5)]
    redis = Redis.from_url(settings.redis_url)
    with respx.mock(base_url=API, assert_all_mocked=True, assert_all_called=False) as router:
        route = router.post("/v1/checkout/sessions")
        async with httpx.AsyncClient(timeout=5.0) as http:
            dispatcher = Dispatcher()
            checkout_jobs.register_handlers(dispatcher)
            ctx = HandlerContext(
                sessions=sessions,
                redis=redis,
                namespace=settings.redis_namespace,
                worker_id="test-relay",
                deps=JobDeps(
                    providers=Providers(
                        stripe=StripeGateway("sk_test_reckon", http, api_base=API),
                        http=http,
                        secret_box=SecretBox(settings.secret_key),
                    ),
                    public_base_url="https://reckon.test",
                    clock=lambda: clock[0],
                    mail=MailSetup(
                        smtp=None,
                        links=ManageLinks(settings.secret_key),
                        public_base_url="https://reckon.test",
                    ),
                ),
            )
            relay = Relay(app_engine, dispatcher, ctx, config=RELAY, seed=1)
            try:
                yield World(
                    payment_id,
                    created["id"],
                    shop.business.slug,
                    row.created_at,
                    row.hold_expires_at,
                    relay,
                    route,
                    clock,
                )
            finally:
                await relay.close()
                await redis.aclose()


async def relay_round(owner: AsyncEngine, w: World) -> None:
    await relay_due(owner, w.relay, "payment.checkout")


async def checkout_state(owner: AsyncEngine, payment_id: str) -> Any:
    async with owner.connect() as connection:
        return (
            await connection.execute(
                text(
                    "SELECT p.status, p.checkout_url, p.checkout_session_id, p.provider_ref, "
                    "o.status AS outbox, o.attempts FROM payments p JOIN outbox o "
                    "ON o.topic = 'payment.checkout' AND o.payload->>'payment_id' = p.id::text "
                    "WHERE p.id = :p"
                ),
                {"p": payment_id},
            )
        ).one()


async def tenant_of(owner: AsyncEngine, payment_id: str) -> Any:
    async with owner.connect() as connection:
        return await connection.scalar(
            text("SELECT tenant_id FROM payments WHERE id = :p"), {"p": payment_id}
        )


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


async def test_retry_after_a_lost_answer_sends_stripe_the_identical_request(
    owner_engine: AsyncEngine, world: World, settings: Settings
) -> None:
    w = world
    session = stripe_fixture(
        "checkout.session", id="cs_test_retry", url="https://checkout.stripe.test/c/cs_test_retry"
    )
    session["payment_intent"] = "pi_retry"

    def stripe(request: httpx.Request) -> httpx.Response:
        w.sent.append(request)
        if len(w.sent) == 1:
            raise httpx.ReadTimeout("Stripe made the session; its answer was lost")
        return httpx.Response(200, json=session)

    w.route.mock(side_effect=stripe)
    await relay_round(owner_engine, w)
    state = await checkout_state(owner_engine, w.payment_id)
    assert (state.status, state.checkout_url, state.outbox) == ("requires_payment", None, "pending")

    w.clock[0] = w.created_at + timedelta(minutes=14)  # late, but the hold still runs
    await relay_round(owner_engine, w)

    first, second = w.sent
    assert first.content == second.content
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.headers["Idempotency-Key"] == f"checkout-{w.payment_id}"
    expires_at = int(form(first)["expires_at"])
    hold_end = w.hold_expires_at.replace(microsecond=0)
    assert expires_at == int((hold_end + timedelta(minutes=35)).timestamp())
    # Stripe wants 30 minutes at least, by its clock: both attempts had more than 35.
    assert expires_at - w.clock[0].timestamp() > 35 * 60
    assert form(first)["client_reference_id"] == w.payment_id
    # The business is named where reconciliation finds it on the platform account: the
    # intent's (and so the charge's) transfer group, and the metadata of both.
    tenant = str(await tenant_of(owner_engine, w.payment_id))
    assert form(first)["payment_intent_data[transfer_group]"] == f"tenant:{tenant}"
    assert form(first)["payment_intent_data[metadata][tenant_id]"] == tenant
    assert form(first)["metadata[tenant_id]"] == tenant
    # Back from Stripe, the customer lands on the booking's own live return page.
    links = ManageLinks(settings.secret_key)
    manage = "https://reckon.test" + links.path(w.slug, uuid.UUID(tenant), uuid.UUID(w.booking_id))
    assert form(first)["success_url"] == manage + "?placed=1&result=success"
    assert form(first)["cancel_url"] == manage + "?placed=1&result=cancel"
    state = await checkout_state(owner_engine, w.payment_id)
    assert (state.status, state.checkout_session_id, state.provider_ref, state.outbox) == (
        "processing",
        "cs_test_retry",
        "pi_retry",
        "delivered",
    )
    assert state.checkout_url == "https://checkout.stripe.test/c/cs_test_retry"


async def test_retry_after_the_hold_is_over_opens_no_page_and_does_not_die(
    owner_engine: AsyncEngine, world: World
) -> None:
    w = world
    w.route.mock(side_effect=httpx.ConnectError("Stripe unreachable"))
    await relay_round(owner_engine, w)
    assert w.route.call_count == 1

    # Stripe comes back after the hold ended: the stored expires_at is now too close for
    # Stripe (and the slot is no longer held), so nothing is sent and the row is done.
    w.clock[0] = w.hold_expires_at + timedelta(seconds=1)
    w.route.mock(return_value=httpx.Response(200, json=stripe_fixture("checkout.session")))
    await relay_round(owner_engine, w)

    assert w.route.call_count == 1
    state = await checkout_state(owner_engine, w.payment_id)
    assert (state.status, state.checkout_url, state.outbox) == (
        "requires_payment",
        None,
        "delivered",
    )


def test_expires_at_follows_the_hold_within_stripes_bounds() -> None:
    created = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)
    held = CheckoutWindow(created, created + timedelta(minutes=15))
    assert held.expires_at == datetime(2026, 11, 21, 10, 50, tzinfo=UTC)
    assert not held.too_late(created + timedelta(minutes=14, seconds=59))
    assert held.too_late(created + timedelta(minutes=15, seconds=1))
    # A hold longer than Stripe allows: clamped to 24 hours from creation, less the margin.
    long = CheckoutWindow(created, created + timedelta(days=3))
    assert long.expires_at == datetime(2026, 11, 22, 9, 55, tzinfo=UTC)
    assert long.too_late(created + timedelta(hours=23, minutes=21))
    # No hold recorded: the standard hold from the payment's creation.
    assert CheckoutWindow(created, None).expires_at == held.expires_at
