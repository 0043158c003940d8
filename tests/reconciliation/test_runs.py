"""Reconciliation end to end: ledger rows in PostgreSQL, providers behind respx, the API."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.gateways.accounts import Providers
from tests.factories import Business
from tests.reconciliation.conftest import FakeStripe
from tests.reconciliation.world import World, add_payment, add_refund, balance

DAY = "2026-03-10"
Client = AsyncTestClient[Litestar]


async def clean_stripe_day(
    owner: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    fake: FakeStripe,
    count: int = 3,
) -> None:
    """`count` charges with fees and one partial refund, all present on both sides."""
    for n in range(count):
        payment_id = await add_payment(
            owner,
            sessions,
            world,
            provider="stripe",
            amount=10_000 + n,
            fee=320 + n,
            charge_ref=f"ch_{n}",
            intent_ref=f"pi_{n}",
        )
        fake.add(f"txn_c{n}", type="charge", source=f"ch_{n}", amount=10_000 + n, fee=320 + n)
        if n == 0:
            await add_refund(
                owner,
                sessions,
                world,
                payment_id,
                provider="stripe",
                amount=2_500,
                refund_ref="re_0",
            )
            fake.add("txn_r0", type="refund", source="re_0", amount=-2_500)


async def run(
    client: Client, business: Business, provider: str = "stripe", **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/reconciliation/runs",
        headers=business.headers,
        json={"provider": provider, "date": DAY, **extra},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def findings(
    client: Client, business: Business, status: str = "open"
) -> set[tuple[str, str]]:
    response = await client.get(
        f"/api/v1/reconciliation/discrepancies?status={status}", headers=business.headers
    )
    assert response.status_code == 200, response.text
    return {(d["kind"], d["provider_ref"]) for d in response.json()}


async def notifications(owner: AsyncEngine, business: Business) -> int:
    async with owner.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM outbox WHERE tenant_id = :t"
                        " AND topic = 'reconciliation.discrepancies_found'"
                    ),
                    {"t": business.tenant_id},
                )
            ).scalar_one()
        )


async def test_clean_day_reconciles_with_zero_discrepancies_across_pages(
    client: Client,
    business: Business,
    world: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    fake_stripe: FakeStripe,
) -> None:
    await clean_stripe_day(owner_engine, sessions, world, fake_stripe, count=120)

    body = await run(client, business)

    assert (body["status"], body["discrepancies"]) == ("completed", 0)
    assert (body["provider_records"], body["matched"]) == (121, 121)
    assert await findings(client, business) == set()
    assert await notifications(owner_engine, business) == 0


async def test_each_injected_discrepancy_kind_is_detected_with_its_type(
    client: Client,
    business: Business,
    world: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    fake_stripe: FakeStripe,
) -> None:
    await clean_stripe_day(owner_engine, sessions, world, fake_stripe)
    fake_stripe.add(
        "txn_x", type="charge", source="ch_unknown", amount=5_000, fee=175, owner=world.tenant_id
    )
    await add_payment(
        owner_engine, sessions, world, provider="stripe", amount=7_000, charge_ref="ch_ghost"
    )
    await add_payment(
        owner_engine,
        sessions,
        world,
        provider="stripe",
        amount=8_000,
        fee=200,
        charge_ref="ch_amount",
    )
    fake_stripe.add("txn_a", type="charge", source="ch_amount", amount=8_100, fee=200)
    await add_payment(
        owner_engine, sessions, world, provider="stripe", amount=9_000, fee=300, charge_ref="ch_fee"
    )
    fake_stripe.add("txn_f", type="charge", source="ch_fee", amount=9_000, fee=330)
    await add_payment(
        owner_engine, sessions, world, provider="stripe", amount=6_000, charge_ref="ch_cur"
    )
    fake_stripe.add("txn_cu", type="charge", source="ch_cur", amount=6_000, currency="usd")
    await add_payment(
        owner_engine, sessions, world, provider="stripe", amount=4_000, charge_ref="ch_dup"
    )
    fake_stripe.add("txn_d1", type="charge", source="ch_dup", amount=4_000)
    fake_stripe.add("txn_d2", type="charge", source="ch_dup", amount=4_000)
    fake_stripe.add(
        "txn_dp",
        type="adjustment",
        source="dp_1",
        amount=-1_500,
        category="dispute",
        owner=world.tenant_id,
    )

    body = await run(client, business)

    expected = {
        ("missing_in_ledger", "ch_unknown"),
        ("missing_at_provider", "ch_ghost"),
        ("amount_mismatch", "ch_amount"),
        ("fee_mismatch", "ch_fee"),
        ("currency_mismatch", "ch_cur"),
        ("duplicate", "ch_dup"),
        ("missing_in_ledger", "dp_1"),
    }
    assert await findings(client, business) == expected
    assert (body["discrepancies"], body["matched"]) == (7, 4)
    assert await notifications(owner_engine, business) == 1


async def test_rerunning_a_day_updates_its_run_and_never_duplicates_findings(
    client: Client,
    business: Business,
    world: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    fake_stripe: FakeStripe,
) -> None:
    await clean_stripe_day(owner_engine, sessions, world, fake_stripe)
    fake_stripe.add(
        "txn_x", type="charge", source="ch_unknown", amount=5_000, owner=world.tenant_id
    )
    await add_payment(
        owner_engine, sessions, world, provider="stripe", amount=7_000, charge_ref="ch_ghost"
    )

    first = await run(client, business)
    second = await run(client, business)

    assert first["id"] == second["id"]
    assert second["attempts"] == 2
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM reconciliation_runs WHERE tenant_id = :t),"
                    " (SELECT count(*) FROM reconciliation_discrepancies WHERE tenant_id = :t)"
                ),
                {"t": business.tenant_id},
            )
        ).one()
    assert tuple(rows) == (1, 2)
    assert await notifications(owner_engine, business) == 1

    fake_stripe.transactions = [t for t in fake_stripe.transactions if t["id"] != "txn_x"]
    third = await run(client, business)
    assert third["discrepancies"] == 1
    assert await findings(client, business) == {("missing_at_provider", "ch_ghost")}
    assert await findings(client, business, "cleared") == {("missing_in_ledger", "ch_unknown")}


async def test_resolving_with_an_adjusting_entry_makes_the_next_run_clean(
    client: Client,
    business: Business,
    world: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    fake_stripe: FakeStripe,
) -> None:
    await clean_stripe_day(owner_engine, sessions, world, fake_stripe)
    fake_stripe.add(
        "txn_x", type="charge", source="ch_unknown", amount=5_000, fee=175, owner=world.tenant_id
    )
    await add_payment(
        owner_engine,
        sessions,
        world,
        provider="stripe",
        amount=8_000,
        fee=200,
        charge_ref="ch_amount",
    )
    fake_stripe.add("txn_a", type="charge", source="ch_amount", amount=8_100, fee=210)
    await run(client, business)
    listed = (
        await client.get("/api/v1/reconciliation/discrepancies", headers=business.headers)
    ).json()
    assert len(listed) == 3
    clearing_before = await balance(owner_engine, business.tenant_id, "clearing:stripe")

    for item in listed:
        response = await client.post(
            f"/api/v1/reconciliation/discrepancies/{item['id']}/resolve",
            headers=business.headers,
            json={"note": "posted from the dashboard", "adjust": True},
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "resolved"
        assert response.json()["adjusting_entry_id"] is not None

    # net moved through the provider: +5000-175 missing, +100 amount, -10 fee
    clearing_after = await balance(owner_engine, business.tenant_id, "clearing:stripe")
    assert clearing_after - clearing_before == 5_000 - 175 + 100 - 10
    body = await run(client, business)
    assert body["discrepancies"] == 0
    again = await client.post(
        f"/api/v1/reconciliation/discrepancies/{listed[0]['id']}/resolve",
        headers=business.headers,
        json={"note": "twice"},
    )
    assert again.status_code == 409
    assert again.json()["type"] == "discrepancy_not_open"


async def test_tolerances_absorb_differences_within_them_and_are_stored_on_the_run(
    client: Client,
    business: Business,
    world: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    fake_stripe: FakeStripe,
) -> None:
    await add_payment(
        owner_engine, sessions, world, provider="stripe", amount=8_000, fee=200, charge_ref="ch_1"
    )
    fake_stripe.add("txn_1", type="charge", source="ch_1", amount=8_002, fee=201)

    strict = await run(client, business)
    loose = await run(client, business, tolerances={"amount_minor": 2, "fee_minor": 1})

    assert strict["discrepancies"] == 2
    assert loose["discrepancies"] == 0
    assert loose["tolerances"] == {"amount_minor": 2, "fee_minor": 1}


async def test_stripe_payout_transfer_matches_the_paid_payout_entry(
    client: Client,
    business: Business,
    world: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    fake_stripe: FakeStripe,
) -> None:
    from tests.payouts.helpers import paid_stripe_payout

    await paid_stripe_payout(sessions, world, amount=4_200, transfer_id="tr_1")
    fake_stripe.add("txn_t", type="transfer", source="tr_1", amount=-4_200)

    body = await run(client, business)

    assert (body["matched"], body["discrepancies"]) == (1, 0)
