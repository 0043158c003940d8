"""The cron paths: every tenant is visited through the narrow SECURITY DEFINER door, each
under its own RLS scope, and the notification handler is registered for the topic."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.gateways.accounts import Providers
from app.gateways.reconciliation_run import reconcile_all
from app.worker.jobs.payouts import run_weekly
from tests.reconciliation.conftest import FakeStripe
from tests.reconciliation.world import DAY_START, add_payment, earn_commission, make_world


async def test_nightly_reconciles_every_tenant_and_weekly_pays_every_tenant(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    fake_stripe: FakeStripe,
) -> None:
    worlds = [await make_world(owner_engine) for _ in range(2)]
    await add_payment(
        owner_engine, sessions, worlds[0], provider="stripe", amount=1_000, charge_ref="ch_a"
    )
    fake_stripe.add("txn_a", type="charge", source="ch_a", amount=1_000)
    for world in worlds:
        await earn_commission(
            sessions, world, world.resource_ids[0], 2_500, at=DAY_START - timedelta(days=3)
        )

    done = await reconcile_all(sessions, providers, date(2026, 3, 10), only=["stripe"])
    created = await run_weekly(sessions, DAY_START + timedelta(hours=3))

    assert (done, created) == (2, 2)
    async with owner_engine.connect() as conn:
        runs = (
            await conn.execute(
                text("SELECT tenant_id, matched, discrepancies FROM reconciliation_runs")
            )
        ).all()
    # One platform account holds both tenants' money: ch_a is the first tenant's alone, so
    # the second tenant's run neither matches it nor reports it missing.
    assert sorted((r.matched, r.discrepancies) for r in runs) == [(0, 0), (1, 0)]
    assert {r.tenant_id for r in runs} == {w.tenant_id for w in worlds}
