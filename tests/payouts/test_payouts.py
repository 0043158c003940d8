"""Payouts: amounts equal the ledger's payables, runs are idempotent, rails settle or reverse."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import respx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.gateways.accounts import Providers
from app.integrations.stripe_client import StripeGateway
from app.outbox.dispatch import HandlerContext
from app.outbox.errors import RetryableError
from app.outbox.models import OutboxEvent
from app.payouts import service
from app.settings import Settings
from app.worker.deps import JobDeps
from app.worker.jobs.payouts import handle_payout_requested
from tests.factories import Business, add_user, sign_up
from tests.integrations.conftest import stripe_fixture
from tests.payouts.helpers import PERIOD, connect_stripe
from tests.reconciliation.world import (
    DAY_START,
    World,
    add_payment,
    add_refund,
    balance,
    earn_commission,
    make_world,
)

Client = AsyncTestClient[Litestar]
STRIPE_API = "https://api.stripe.test"
RUN_AT = DAY_START + timedelta(hours=1)  # the day after PERIOD ends


@pytest.fixture
async def business(client: Client) -> Business:
    return await sign_up(client, timezone="UTC")


@pytest.fixture
async def world(owner_engine: AsyncEngine, business: Business) -> World:
    return await make_world(owner_engine, tenant_id=business.tenant_id, resources=3)


async def run_payouts(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    *,
    period: tuple[date, date] = PERIOD,
    minimum: int = 1,
) -> service.PayoutRun:
    async with sessions() as session:
        return await service.run_payouts(
            session,
            world.tenant_id,
            period_start=period[0],
            period_end=period[1],
            minimum_minor=minimum,
            now=RUN_AT,
            actor=audit.SYSTEM,
        )


async def test_payouts_after_random_bookings_and_refunds_equal_the_commission_payables(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    rng = random.Random(7)
    expected = dict.fromkeys(world.resource_ids, 0)
    for n in range(40):
        staff = rng.choice(world.resource_ids)
        price = rng.randint(1_000, 50_000)
        at = DAY_START - timedelta(days=rng.randint(2, 7), minutes=n)
        payment_id = await add_payment(
            owner_engine,
            sessions,
            world,
            provider="stripe",
            amount=price,
            fee=price * 29 // 1000,
            at=at,
            charge_ref=f"ch_{n}",
        )
        commission = price * rng.choice([1000, 1500, 3333]) // 10_000
        await earn_commission(sessions, world, staff, commission, at=at)
        expected[staff] += commission
        if rng.random() < 0.3:
            refunded = rng.randint(1, price)
            await add_refund(
                owner_engine,
                sessions,
                world,
                payment_id,
                provider="stripe",
                amount=refunded,
                refund_ref=f"re_{n}",
                at=at + timedelta(hours=1),
            )
            clawback = commission * refunded // price
            await earn_commission(sessions, world, staff, -clawback, at=at + timedelta(hours=1))
            expected[staff] -= clawback

    result = await run_payouts(sessions, world)

    paid = {p.resource_id: p.amount_minor for p in result.created}
    assert paid == {staff: owed for staff, owed in expected.items() if owed > 0}
    for staff in world.resource_ids:
        assert await balance(owner_engine, world.tenant_id, f"payable:staff:{staff}") == 0
    assert await balance(owner_engine, world.tenant_id, "payouts_in_transit:manual") == -sum(
        expected.values()
    )


async def test_a_run_repeated_for_the_same_period_creates_nothing_new(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    await earn_commission(
        sessions, world, world.resource_ids[0], 5_000, at=DAY_START - timedelta(days=3)
    )
    first = await run_payouts(sessions, world)
    await earn_commission(
        sessions, world, world.resource_ids[0], 700, at=DAY_START - timedelta(days=2)
    )

    second = await run_payouts(sessions, world)

    assert [p.amount_minor for p in first.created] == [5_000]
    assert second.created == []
    async with owner_engine.connect() as conn:
        counts = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM payouts), (SELECT count(*) FROM outbox"
                    " WHERE topic = 'payout.requested')"
                )
            )
        ).one()
    assert tuple(counts) == (1, 1)
    later = await run_payouts(sessions, world, period=(PERIOD[1], PERIOD[1] + timedelta(days=7)))
    assert [p.amount_minor for p in later.created] == [700]


async def test_commission_after_the_period_end_and_below_the_minimum_waits(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    first, second, third = world.resource_ids
    await earn_commission(sessions, world, first, 4_000, at=DAY_START - timedelta(days=3))
    await earn_commission(sessions, world, first, 900, at=DAY_START + timedelta(minutes=5))
    await earn_commission(sessions, world, second, 99, at=DAY_START - timedelta(days=3))
    await earn_commission(sessions, world, third, 900, at=DAY_START + timedelta(minutes=5))

    result = await run_payouts(sessions, world, minimum=100)

    assert [(p.resource_id, p.amount_minor) for p in result.created] == [(first, 4_000)]


async def test_racing_runs_for_different_periods_never_pay_more_than_is_owed(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    staff = world.resource_ids[0]
    await earn_commission(sessions, world, staff, 10_000, at=DAY_START - timedelta(days=9))
    periods = [
        (PERIOD[0] - timedelta(days=7 * k), PERIOD[1] - timedelta(days=7 * k) + timedelta(days=7))
        for k in range(6)
    ]

    results = await asyncio.gather(*(run_payouts(sessions, world, period=p) for p in periods))

    total = sum(p.amount_minor for r in results for p in r.created)
    assert total == 10_000
    assert await balance(owner_engine, world.tenant_id, f"payable:staff:{staff}") == 0


def handler_context(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, providers: Providers
) -> HandlerContext[JobDeps]:
    return HandlerContext(
        sessions=sessions,
        redis=Redis.from_url(settings.redis_url),
        namespace=settings.redis_namespace,
        worker_id="test",
        deps=JobDeps(providers=providers),
    )


async def staged_event(owner: AsyncEngine, payout_id: uuid.UUID) -> OutboxEvent:
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


async def test_stripe_rail_transfers_with_the_payout_key_then_settles_the_ledger(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    settings: Settings,
) -> None:
    await connect_stripe(sessions, world, "acct_1Staff")
    await earn_commission(
        sessions, world, world.resource_ids[0], 4_200, at=DAY_START - timedelta(days=3)
    )
    (payout,) = (await run_payouts(sessions, world)).created
    assert (payout.rail, payout.destination) == ("stripe", "acct_1Staff")
    event = await staged_event(owner_engine, payout.id)
    async with httpx.AsyncClient() as http, respx.mock() as router:
        route = router.post(f"{STRIPE_API}/v1/transfers").respond(
            200,
            json=stripe_fixture(
                "transfer", id="tr_9", amount=4_200, currency="egp", destination="acct_1Staff"
            ),
        )
        ctx = handler_context(
            sessions,
            settings,
            Providers(stripe=StripeGateway("sk_test", http, api_base=STRIPE_API)),
        )
        await handle_payout_requested(ctx, event)
        await handle_payout_requested(ctx, event)  # a redelivery pays nothing twice

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == f"payout-{payout.id}"
    assert b"destination=acct_1Staff" in request.content and b"amount=4200" in request.content
    async with sessions() as session:
        paid = await service.get_payout(session, world.tenant_id, payout.id)
    assert (paid.status, paid.provider_ref) == ("paid", "tr_9")
    assert await balance(owner_engine, world.tenant_id, "payouts_in_transit:stripe") == 0
    assert await balance(owner_engine, world.tenant_id, "clearing:stripe") == -4_200


async def test_a_refused_transfer_fails_the_payout_and_the_staff_member_is_owed_again(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    settings: Settings,
) -> None:
    staff = world.resource_ids[0]
    await connect_stripe(sessions, world)
    await earn_commission(sessions, world, staff, 4_200, at=DAY_START - timedelta(days=3))
    (payout,) = (await run_payouts(sessions, world)).created
    assert await balance(owner_engine, world.tenant_id, f"payable:staff:{staff}") == 0
    event = await staged_event(owner_engine, payout.id)
    async with httpx.AsyncClient() as http, respx.mock() as router:
        route = router.post(f"{STRIPE_API}/v1/transfers")
        ctx = handler_context(
            sessions,
            settings,
            Providers(stripe=StripeGateway("sk_test", http, api_base=STRIPE_API)),
        )
        route.respond(503, json={"error": {"type": "api_error", "message": "busy"}})
        with pytest.raises(RetryableError):
            await handle_payout_requested(ctx, event)
        route.respond(
            400,
            json={
                "error": {
                    "type": "invalid_request_error",
                    "code": "account_invalid",
                    "message": "no",
                }
            },
        )
        await handle_payout_requested(ctx, event)

    async with sessions() as session:
        failed = await service.get_payout(session, world.tenant_id, payout.id)
    assert failed.status == "failed"
    assert await balance(owner_engine, world.tenant_id, f"payable:staff:{staff}") == -4_200
    assert await balance(owner_engine, world.tenant_id, "payouts_in_transit:stripe") == 0


async def test_manual_rail_exports_csv_and_is_marked_paid_over_http(
    client: Client,
    business: Business,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    await earn_commission(
        sessions, world, world.resource_ids[1], 12_345, at=DAY_START - timedelta(days=3)
    )
    created = await client.post(
        "/api/v1/payouts/run",
        headers=business.headers,
        json={"period_start": str(PERIOD[0]), "period_end": str(PERIOD[1]), "minimum_minor": 100},
    )
    assert created.status_code == 201, created.text
    (payout,) = created.json()["created"]
    assert payout["amount"] == {"amount_minor": 12_345, "currency": "EGP"}

    sheet = await client.get("/api/v1/payouts/export.csv", headers=business.headers)
    assert sheet.headers["content-type"].startswith("text/csv")
    lines = sheet.text.strip().split("\r\n")
    assert lines[1].split(",")[:4] == [payout["id"], str(world.resource_ids[1]), "123.45", "EGP"]

    paid = await client.post(
        f"/api/v1/payouts/{payout['id']}/mark-paid",
        headers=business.headers,
        json={"reference": "bank-77"},
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    assert await balance(owner_engine, world.tenant_id, "clearing:bank") == -12_345
    listed = (await client.get("/api/v1/payouts", headers=business.headers)).json()
    assert [(p["id"], p["status"]) for p in listed] == [(payout["id"], "paid")]
    again = await client.post(
        f"/api/v1/payouts/{payout['id']}/fail", headers=business.headers, json={"reason": "late"}
    )
    assert again.status_code == 409


async def test_payouts_are_for_owners_and_admins_and_bad_input_is_a_422_problem(
    client: Client,
    business: Business,
) -> None:
    staff = {"Authorization": f"Bearer {await add_user(client, business, 'staff')}"}
    for method, path in [
        ("get", "/api/v1/payouts"),
        ("post", "/api/v1/payouts/run"),
        ("get", "/api/v1/payouts/export.csv"),
    ]:
        kwargs: dict[str, Any] = {"json": {}} if method == "post" else {}
        response = await getattr(client, method)(path, headers=staff, **kwargs)
        assert response.status_code == 403, path
    for body in [
        {"minimum_minor": 0},
        {"period_start": "2026-03-09", "period_end": "2026-03-02"},
        {"period_start": "yesterday"},
        {"unknown": True},
    ]:
        response = await client.post("/api/v1/payouts/run", headers=business.headers, json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
    bad_account = await client.put(
        f"/api/v1/payouts/accounts/{uuid.uuid4()}",
        headers=business.headers,
        json={"rail": "stripe"},
    )
    assert bad_account.status_code == 422
