"""Every pair of money transitions fired at many bookings at once, over real parallel
connections; after each round the books are checked payment by payment (tests/checkout/
races.py: the payment row equals its clearing postings, a booking's state agrees with its
money, no refund left pending, trial balance zero) and no answer was a 5xx."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.bookings import lifecycle
from app.outbox.dispatch import Dispatcher
from app.settings import Settings
from app.worker.jobs import payments as checkout_jobs
from tests.checkout import races
from tests.checkout.races import Tally, api, fire, sandbox_pay, stripe_send
from tests.checkout.support import PRICE, Client, count, run_outbox
from tests.inbox.support import apply_inbox


@pytest.fixture
def client(live_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Races go over real HTTP to a real server: concurrent requests, parallel connections."""
    return live_client


def _refund_worker() -> Dispatcher:
    dispatcher = Dispatcher()
    checkout_jobs.register_handlers(dispatcher)
    return dispatcher


async def _settle(
    owner: AsyncEngine, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """The worker's turn: sandbox refunds are asked of the provider and finished."""
    await run_outbox(owner, sessions, settings, _refund_worker(), "payment.refund")


def _cancel(client: Client, shop: races.Shop, booking: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=shop.business.headers)


async def test_capture_cancel_and_a_second_capture_at_once_keep_the_policy(
    client: Client,
    settings: Settings,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tally = Tally()
    shop = await races.race_shop(client)
    bookings = await races.place(client, shop)
    await fire(
        tally,
        [
            [
                sandbox_pay(client, settings, tally, shop, b),
                api(tally, "cancel", lambda b=b: _cancel(client, shop, b)),
                sandbox_pay(client, settings, tally, shop, b),
            ]
            for b in bookings
        ],
    )
    await _settle(owner_engine, sessions, settings)
    tally.assert_no_server_error()
    assert {s for kind, s, _ in tally.statuses if kind == "cancel"} <= {200, 409}
    assert await races.assert_books(owner_engine, shop.business.tenant_id) == len(bookings)
    # Every booking ended cancelled: the cancel either won outright or came after the capture.
    statuses = await count(
        owner_engine,
        "SELECT count(*) FROM bookings WHERE tenant_id = :t AND status = 'cancelled'",
        t=shop.business.tenant_id,
    )
    assert statuses == len(bookings)


async def test_capture_against_hold_expiry_by_cron_and_by_a_new_booker(
    client: Client,
    settings: Settings,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tally = Tally()
    shop = await races.race_shop(client)
    tenant = shop.business.tenant_id
    bookings = await races.place(client, shop)
    await races.set_hold_expired(owner_engine, tenant)

    async def cron() -> None:
        async with sessions() as session:
            await lifecycle.expire_holds(session, tenant, datetime.now(UTC))

    async def new_booker(booking: dict[str, Any]) -> int:
        body = {
            "service_id": shop.service_id,
            "branch_id": shop.branch_id,
            "resource_id": shop.resource_id,
            "start": booking["start"],
            "customer": {"name": "Omar Said", "phone": "+201009998887"},
            "payment": {"provider": "cash"},
        }
        return await api(
            tally,
            "place",
            lambda: client.post("/api/v1/bookings", json=body, headers=shop.business.headers),
        )

    await fire(
        tally,
        [[sandbox_pay(client, settings, tally, shop, b), cron(), new_booker(b)] for b in bookings],
    )
    await _settle(owner_engine, sessions, settings)
    tally.assert_no_server_error()
    await races.assert_books(owner_engine, tenant)
    # One slot, one holder: a paid-late booking gave its slot up and its money back.
    overlapping = await count(
        owner_engine,
        "SELECT count(*) FROM bookings a JOIN bookings b ON a.tenant_id = b.tenant_id "
        "AND a.id < b.id AND a.resource_id = b.resource_id AND a.blocked && b.blocked "
        "WHERE a.tenant_id = :t AND a.status IN ('pending_payment','confirmed','checked_in') "
        "AND b.status IN ('pending_payment','confirmed','checked_in')",
        t=tenant,
    )
    assert overlapping == 0


async def test_failure_checkout_expiry_and_capture_at_once(
    client: Client,
    settings: Settings,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tally = Tally()
    shop = await races.race_shop(client)
    bookings = await races.place(client, shop)
    await fire(
        tally,
        [
            [
                sandbox_pay(client, settings, tally, shop, b, paid=False, kind="payment.failed"),
                sandbox_pay(client, settings, tally, shop, b),
                sandbox_pay(client, settings, tally, shop, b, paid=False, kind="payment.cancelled"),
            ]
            for b in bookings
        ],
    )
    await _settle(owner_engine, sessions, settings)
    tally.assert_no_server_error()
    await races.assert_books(owner_engine, shop.business.tenant_id)


async def test_refund_results_and_a_provider_side_refund_race_the_owner(
    client: Client,
    owner_engine: AsyncEngine,
) -> None:
    """Stripe: the owner asks for 6,000 back while the business refunds 5,000 in Stripe's
    dashboard; then Stripe's answers for our refund (succeeded, a duplicate, and a stale
    failure) arrive together."""
    tally = Tally()
    shop = await races.race_shop(client)
    tenant = shop.business.tenant_id
    bookings = await races.place(client, shop, provider="stripe")
    intents = {b["id"]: "pi_" + uuid.uuid4().hex[:20] for b in bookings}
    for b in bookings:
        captured = races.stripe_intent(shop, b, intents[b["id"]])
        assert await stripe_send(client, tally, "payment_intent.succeeded", captured) == 200
    await apply_inbox()

    def dashboard_refund(booking: dict[str, Any]) -> dict[str, Any]:
        intent = intents[booking["id"]]
        refund = races.stripe_fixture(
            "refund",
            id="re_" + uuid.uuid4().hex[:20],
            amount=5_000,
            status="succeeded",
            metadata={},
            payment_intent=intent,
        )
        return races.stripe_fixture(
            "charge",
            id="ch_" + intent[3:],
            amount=PRICE,
            amount_captured=PRICE,
            amount_refunded=5_000,
            currency="egp",
            payment_intent=intent,
            metadata=races.stripe_metadata(shop, booking),
            refunds={"object": "list", "data": [refund], "has_more": False},
        )

    def owner_refund(booking: dict[str, Any]) -> Any:
        return client.post(
            f"/api/v1/bookings/{booking['id']}/refunds",
            json={"amount_minor": 6_000},
            headers=shop.business.headers,
        )

    await fire(
        tally,
        [
            [
                stripe_send(client, tally, "charge.refunded", dashboard_refund(b)),
                api(tally, "refund", lambda b=b: owner_refund(b)),
            ]
            for b in bookings
        ],
    )
    ours = await _pending_refunds(owner_engine, tenant)
    assert len(ours) == len(bookings)

    def result(refund: Any, status: str) -> dict[str, Any]:
        return races.stripe_fixture(
            "refund",
            id="re_" + refund.id.hex[:20],
            amount=refund.amount_minor,
            status=status,
            metadata={"refund_id": str(refund.id)},
            payment_intent=intents[str(refund.booking_id)],
            failure_reason="expired_or_canceled_card" if status == "failed" else None,
        )

    await fire(
        tally,
        [
            [
                stripe_send(client, tally, "refund.updated", result(r, "succeeded")),
                stripe_send(client, tally, "refund.updated", result(r, "succeeded")),
                stripe_send(client, tally, "refund.failed", result(r, "failed")),
            ]
            for r in ours
        ],
    )
    tally.assert_no_server_error()
    await races.assert_books(owner_engine, tenant)
    kept = await count(
        owner_engine,
        "SELECT sum(captured_minor - refunded_minor) FROM payments WHERE tenant_id = :t",
        t=tenant,
    )
    # The dashboard refund always stands; ours stands unless its failure came first.
    failed = await count(
        owner_engine,
        "SELECT count(*) FROM refunds WHERE tenant_id = :t AND status = 'failed'",
        t=tenant,
    )
    assert kept == len(bookings) * (PRICE - 5_000) - (len(bookings) - failed) * 6_000


async def _pending_refunds(owner: AsyncEngine, tenant: uuid.UUID) -> list[Any]:
    async with owner.connect() as connection:
        return list(
            (
                await connection.execute(
                    text(
                        "SELECT id, booking_id, amount_minor FROM refunds "
                        "WHERE tenant_id = :t AND status = 'pending'"
                    ),
                    {"t": tenant},
                )
            ).all()
        )


async def test_completion_and_payout_run_race_refunds(
    client: Client,
    settings: Settings,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Completion against a refund, then the payout run against refunds after completion:
    commission is owed once, payables never go below zero, and every refund is booked."""
    tally = Tally()
    shop = await races.race_shop(client)
    tenant = shop.business.tenant_id
    headers = shop.business.headers
    bookings = await races.place(client, shop)
    for b in bookings:
        assert await sandbox_pay(client, settings, tally, shop, b) == 200
        await apply_inbox()
        checked_in = await client.post(f"/api/v1/bookings/{b['id']}/check-in", headers=headers)
        assert checked_in.status_code == 200, checked_in.text

    def refund(booking: dict[str, Any], amount: int) -> Any:
        return client.post(
            f"/api/v1/bookings/{booking['id']}/refunds",
            json={"amount_minor": amount},
            headers=headers,
        )

    await fire(
        tally,
        [
            [
                api(
                    tally,
                    "complete",
                    lambda b=b: client.post(
                        f"/api/v1/bookings/{b['id']}/complete", headers=headers
                    ),
                ),
                api(tally, "refund", lambda b=b: refund(b, 4_000)),
            ]
            for b in bookings
        ],
    )
    today = datetime.now(UTC).date()
    period = {
        "period_start": str(today.replace(day=1)),
        "period_end": "2099-01-01",
        "minimum_minor": 1,
    }
    await fire(
        tally,
        [
            [
                api(
                    tally,
                    "payout",
                    lambda: client.post("/api/v1/payouts/run", json=period, headers=headers),
                )
            ]
        ]
        + [[api(tally, "refund", lambda b=b: refund(b, 2_000))] for b in bookings],
    )
    await _settle(owner_engine, sessions, settings)
    tally.assert_no_server_error()
    assert {s for kind, s, _ in tally.statuses if kind == "complete"} == {200}
    await races.assert_books(owner_engine, tenant)
    negative = await count(
        owner_engine,
        "SELECT count(*) FROM balances WHERE tenant_id = :t AND balance_minor > 0 AND account_id "
        "IN (SELECT id FROM ledger_accounts WHERE tenant_id = :t AND code LIKE 'payable:%')",
        t=tenant,
    )
    assert negative == 0
    paid_out = await count(
        owner_engine,
        "SELECT coalesce(sum(amount_minor), 0) FROM payouts WHERE tenant_id = :t",
        t=tenant,
    )
    commission = await count(
        owner_engine,
        "SELECT -coalesce(sum(p.amount_minor), 0) FROM postings p JOIN ledger_accounts a "
        "ON a.tenant_id = p.tenant_id AND a.id = p.account_id JOIN journal_entries e "
        "ON e.tenant_id = p.tenant_id AND e.id = p.entry_id "
        "WHERE p.tenant_id = :t AND a.code LIKE 'payable:staff:%' AND e.reason <> 'payout'",
        t=tenant,
    )
    assert commission > 0 and paid_out == commission
